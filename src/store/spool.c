/*
 * spool.c - job directories, atomic file writes and the exit record (see spool.h).
 *
 * The exit record is text, so a person can read it with cat while debugging:
 *
 *   rxjob-exit 1
 *   go 1
 *   state EXIT
 *   exit_status 2
 *   signal 0
 *   task_pid 4242
 *   started_s 1764460800.125000
 *   ended_s 1764460801.500000
 *   error 13
 *   exit status 2
 *
 * Fields come in this order, one per line; `error N` is followed by exactly N bytes of message
 * (N = 0: none), so the message may hold any byte, newlines included. The supervisor writes it
 * to t<i>.exit.tmp, fsyncs it, renames it over t<i>.exit and fsyncs the directory: a reader sees
 * a whole record or none, even after a power loss.
 */
#define _GNU_SOURCE
#include "store/spool.h"

#include "core/internal.h"
#include "exec/spawn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The longest a job directory's removal as its user may take, milliseconds (remove_tree_as). */
#define SPOOL_REMOVE_AS_MS 30000

#define EXIT_RECORD_MAX SPOOL_EXIT_RECORD_MAX
#define ERROR_MAX_BYTES SPOOL_ERROR_MAX_BYTES

int
spool_job_dir(const char *state_dir, int64_t id, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/spool/%" PRId64, state_dir, id);

    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int
spool_task_path(const char *job_dir, uint64_t idx, const char *suffix, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/t%" PRIu64 "%s", job_dir, idx, suffix);

    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int
spool_run_out_path(const char *job_dir, uint64_t first, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/r%" PRIu64 ".out", job_dir, first);

    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int
write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int
fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int
spool_tmp_open(const char *dir, const char *name, char *tmp, size_t tmp_len)
{
    int n = snprintf(tmp, tmp_len, "%s/%s.tmp", dir, name);

    if (n < 0 || (size_t)n >= tmp_len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    /* Afresh: a task may have put anything there (open(2) of a FIFO blocks); O_EXCL refuses
     * what appears after the unlink. */
    (void)unlink(tmp);
    return open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
}

rx_err
spool_tmp_commit(int fd, const char *tmp, const char *dir, const char *name, int durable)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    int rc, saved;

    if (n < 0 || (size_t)n >= sizeof(path)) {
        close(fd);
        (void)unlink(tmp);
        errno = ENAMETOOLONG;
        return RX_EIO;
    }
    rc = durable ? fsync(fd) : 0;
    saved = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0) {
        (void)unlink(tmp);
        errno = saved;
        return RX_EIO;
    }
    if (rename(tmp, path) != 0) {
        saved = errno;
        (void)unlink(tmp);
        errno = saved;
        return RX_EIO;
    }
    if (durable && fsync_dir(dir) != 0)
        return RX_EIO;
    return RX_OK;
}

rx_err
spool_write_atomic(const char *dir, const char *name, const void *data, size_t len, int durable)
{
    char tmp[PATH_MAX];
    int fd = spool_tmp_open(dir, name, tmp, sizeof(tmp));

    if (fd < 0)
        return RX_EIO;
    if (write_all(fd, data, len) != 0) {
        int saved = errno;

        close(fd);
        (void)unlink(tmp);
        errno = saved;
        return RX_EIO;
    }
    return spool_tmp_commit(fd, tmp, dir, name, durable);
}

/* Empty the directory open at dfd (which this call closes), depth levels down at most. */
static rx_err
remove_tree_at(int dfd, int depth)
{
    DIR *d = fdopendir(dfd);
    rx_err err = RX_OK;

    if (d == NULL) {
        close(dfd);
        return RX_EIO;
    }
    for (;;) {
        struct dirent *e;

        errno = 0;
        e = readdir(d);
        if (e == NULL) {
            if (errno != 0)
                err = RX_EIO;
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0 || errno == ENOENT)
            continue;
        if (errno == EISDIR && depth > 0) {
            /* A directory a task made (it owns its job directory in system mode). */
            int sub = openat(dirfd(d), e->d_name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

            /* One the task closed to itself (chmod 0500) is opened up again: it is its own. */
            if (sub >= 0)
                (void)fchmod(sub, S_IRWXU);
            if (sub >= 0 && remove_tree_at(sub, depth - 1) == RX_OK &&
                unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) == 0)
                continue;
        }
        err = RX_EIO;
    }
    closedir(d);
    return err;
}

/* rx__run_as's part, as the user: empty the directory open at *arg. */
static int
remove_tree_fn(void *arg)
{
    int dfd = *(const int *)arg;

    (void)fchmod(dfd, S_IRWXU); /* the user's: a task may have closed it to itself */
    return remove_tree_at(dfd, SPOOL_MAX_DEPTH) == RX_OK ? 0 : 1;
}

/* Empty the directory open at dfd (closed here) with the rights of uid and gid only (no
 * supplementary groups): from a child that has become them, so that what a user moved into a job
 * directory it owns (a directory of its own holding root's files) is removed only as far as that
 * user could remove it itself. Bounded (SPOOL_REMOVE_AS_MS): the child is the user's, who could
 * stop it or keep it busy in a tree of their making; what is left then stays, and the caller
 * logs it. RX_OK; RX_EIO with errno (ETIMEDOUT, EPERM). */
static rx_err
remove_tree_as(int dfd, uid_t uid, gid_t gid)
{
    int rc = rx__run_as(uid, gid, NULL, 0, remove_tree_fn, &dfd, SPOOL_REMOVE_AS_MS);
    int saved = errno;

    close(dfd);
    if (rc == 0)
        return RX_OK;
    errno = rc > 0 ? EPERM : saved;
    return RX_EIO;
}

rx_err
spool_remove_dir(const char *path)
{
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    rx_err err;

    if (dfd < 0)
        return errno == ENOENT ? RX_OK : RX_EIO;
    /* A job directory given to a user (system mode) is emptied as that user. */
    if (geteuid() == 0 && fstat(dfd, &st) == 0 && st.st_uid != 0)
        err = remove_tree_as(dfd, st.st_uid, st.st_gid);
    else
        err = remove_tree_at(dfd, SPOOL_MAX_DEPTH);
    if (rmdir(path) != 0 && errno != ENOENT)
        err = RX_EIO;
    return err;
}

rx_err
spool_give_job_dir(const char *job_dir, uid_t uid, gid_t gid)
{
    static const char *const daemon_files[] = {"work", "stdin", "args"};
    struct stat st;
    int dfd = open(job_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int saved;

    if (dfd < 0)
        return RX_EIO;
    for (size_t i = 0; i < sizeof(daemon_files) / sizeof(daemon_files[0]); i++) {
        int fd = openat(dfd, daemon_files[i], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

        if (fd < 0)
            continue; /* none (no stdin, no args), or not ours to give */
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
            st.st_uid == geteuid() && fchown(fd, uid, gid) != 0) {
            saved = errno;
            close(fd);
            close(dfd);
            errno = saved;
            return RX_EIO;
        }
        close(fd);
    }
    if (fstat(dfd, &st) != 0 || (st.st_uid != uid && fchown(dfd, uid, gid) != 0)) {
        saved = errno;
        close(dfd);
        errno = saved;
        return RX_EIO;
    }
    close(dfd);
    return RX_OK;
}

int
spool_open_read(const char *path, struct stat *out_st)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0) {
        int saved = errno;

        close(fd);
        errno = saved;
        return -1;
    }
    if (!S_ISREG(st.st_mode) || (st.st_nlink > 1 && geteuid() == 0)) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    if (out_st != NULL)
        *out_st = st;
    return fd;
}

rx_err
spool_read_file(const char *path, size_t max, void **out_data, size_t *out_len)
{
    struct stat st;
    size_t got = 0, size;
    char *buf;
    int fd = spool_open_read(path, &st);

    if (fd < 0)
        return errno == ENOENT ? RX_ENOENT : errno == ELOOP || errno == EINVAL ? RX_EINVAL : RX_EIO;
    if (st.st_size < 0 || (uint64_t)st.st_size > max) {
        close(fd);
        *out_len = st.st_size < 0 ? 0 : (size_t)st.st_size;
        return RX_ETOOBIG;
    }
    size = (size_t)st.st_size;
    buf = rx__malloc(size + 1);
    if (buf == NULL) {
        close(fd);
        return RX_ENOMEM;
    }
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            close(fd);
            rx__free(buf);
            return RX_EIO;
        }
        if (n == 0)
            break; /* the file shrank: what is there is the content */
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *out_data = buf;
    *out_len = got;
    return RX_OK;
}

/* ---------------------------------------------------------------------------------------------
 * The exit record
 * ------------------------------------------------------------------------------------------- */

rx_err
spool_exit_format(const spool_exit *rec, char **out_buf, size_t *out_len)
{
    char head[512];
    char *buf;
    size_t err_len = rec->error ? strlen(rec->error) : 0;
    int n;

    if (err_len > ERROR_MAX_BYTES)
        err_len = ERROR_MAX_BYTES;
    n = snprintf(head, sizeof(head),
                 "rxjob-exit 1\ngo %d\nstate %s\nexit_status %d\nsignal %d\ntask_pid %ld\n"
                 "started_s %.6f\nended_s %.6f\nerror %zu\n",
                 rec->go ? 1 : 0, rx_task_state_name(rec->state), rec->exit_status, rec->signal,
                 (long)rec->task_pid, rec->started_s, rec->ended_s, err_len);
    if (n < 0 || (size_t)n >= sizeof(head))
        return RX_EIO;
    buf = rx__malloc((size_t)n + err_len + 1);
    if (buf == NULL)
        return RX_ENOMEM;
    memcpy(buf, head, (size_t)n);
    if (err_len > 0)
        memcpy(buf + n, rec->error, err_len);
    buf[(size_t)n + err_len] = '\0';
    *out_buf = buf;
    *out_len = (size_t)n + err_len;
    return RX_OK;
}

rx_err
spool_end_message(const char *text, size_t len, char **out_buf, size_t *out_len)
{
    char *msg;

    if (len == 0 || len > 0xffffffffu)
        return RX_EINVAL;
    msg = rx__malloc(len + 5);
    if (msg == NULL)
        return RX_ENOMEM;
    msg[0] = 'E';
    rx__le32_put(msg + 1, (uint32_t)len);
    memcpy(msg + 5, text, len);
    *out_buf = msg;
    *out_len = len + 5;
    return RX_OK;
}

rx_err
spool_exit_message(const spool_exit *rec, char **out_buf, size_t *out_len)
{
    char *text;
    size_t len;
    rx_err err = spool_exit_format(rec, &text, &len);

    if (err != RX_OK)
        return err;
    err = spool_end_message(text, len, out_buf, out_len);
    rx__free(text);
    return err;
}

/* Write the record text buf (len bytes; owned, freed here) durably as t<idx>.exit; err is its
 * formatting's outcome, passed on when not RX_OK. */
static rx_err
exit_text_write(const char *job_dir, uint64_t idx, rx_err err, char *buf, size_t len)
{
    char name[64];

    if (err != RX_OK)
        return err;
    (void)snprintf(name, sizeof(name), "t%" PRIu64 ".exit", idx);
    err = spool_write_atomic(job_dir, name, buf, len, 1);
    rx__free(buf);
    return err;
}

rx_err
spool_exit_write(const char *job_dir, uint64_t idx, const spool_exit *rec)
{
    char *buf = NULL;
    size_t len = 0;
    rx_err err = spool_exit_format(rec, &buf, &len);

    return exit_text_write(job_dir, idx, err, buf, len);
}

/* The value of the next line, which must be "key value"; advances *p past the line. */
static const char *
next_field(char **p, const char *key)
{
    size_t klen = strlen(key);
    char *line = *p, *nl = strchr(line, '\n');

    if (nl == NULL)
        return NULL;
    *nl = '\0';
    *p = nl + 1;
    if (strncmp(line, key, klen) != 0 || line[klen] != ' ')
        return NULL;
    return line + klen + 1;
}

static int
field_i64(char **p, const char *key, int64_t min, int64_t max, int64_t *out)
{
    const char *v = next_field(p, key);

    return v != NULL && rx__parse_i64(v, min, max, out) == RX_OK ? 0 : -1;
}

static int
field_double(char **p, const char *key, double *out)
{
    const char *v = next_field(p, key);
    char *end;

    if (v == NULL)
        return -1;
    errno = 0;
    *out = strtod(v, &end);
    return errno == 0 && end != v && *end == '\0' ? 0 : -1;
}

rx_err
spool_exit_parse(char *data, size_t len, spool_exit *out_rec)
{
    spool_exit rec;
    const char *state;
    char *p = data;
    int64_t v, err_len;
    int found = 0;

    memset(&rec, 0, sizeof(rec));
    if (len > EXIT_RECORD_MAX || data[len] != '\0' || strncmp(p, "rxjob-exit 1\n", 13) != 0)
        return RX_EINVAL;
    p += 13;
    if (field_i64(&p, "go", 0, 1, &v) != 0)
        return RX_EINVAL;
    rec.go = (int)v;
    state = next_field(&p, "state");
    if (state == NULL)
        return RX_EINVAL;
    for (int s = 0; s < RX_TASK_STATE_COUNT; s++) {
        if (strcmp(state, rx_task_state_name((rx_task_state)s)) == 0) {
            rec.state = (rx_task_state)s;
            found = 1;
        }
    }
    if (!found || field_i64(&p, "exit_status", -1, 255, &v) != 0)
        return RX_EINVAL;
    rec.exit_status = (int)v;
    if (field_i64(&p, "signal", 0, 128, &v) != 0)
        return RX_EINVAL;
    rec.signal = (int)v;
    if (field_i64(&p, "task_pid", 0, INT32_MAX, &v) != 0)
        return RX_EINVAL;
    rec.task_pid = (pid_t)v;
    if (field_double(&p, "started_s", &rec.started_s) != 0 ||
        field_double(&p, "ended_s", &rec.ended_s) != 0 ||
        field_i64(&p, "error", 0, ERROR_MAX_BYTES, &err_len) != 0 ||
        (size_t)(p - data) + (size_t)err_len != len)
        return RX_EINVAL;
    if (err_len > 0) {
        rec.error = rx__memdup(p, (size_t)err_len);
        if (rec.error == NULL)
            return RX_ENOMEM;
    }
    *out_rec = rec;
    return RX_OK;
}

rx_err
spool_exit_read(const char *job_dir, uint64_t idx, spool_exit *out_rec)
{
    char path[PATH_MAX];
    void *data = NULL;
    size_t len = 0;
    rx_err err;

    if (spool_task_path(job_dir, idx, ".exit", path, sizeof(path)) != 0)
        return RX_EIO;
    err = spool_read_file(path, EXIT_RECORD_MAX, &data, &len);
    if (err == RX_ETOOBIG)
        return RX_EINVAL;
    if (err != RX_OK)
        return err;
    err = spool_exit_parse(data, len, out_rec);
    rx__free(data);
    return err;
}

/* ---------------------------------------------------------------------------------------------
 * A run's exit record (spool.h spool_run_exit): a chunk of tasks under one supervisor
 * ------------------------------------------------------------------------------------------- */

/* One entry: "task I", "result_at RUN OFF LEN", then a task's fields from "state" to the error's
 * bytes, appended to *buf (grown as needed). RX_OK; RX_EIO; RX_ENOMEM. */
static rx_err
entry_append(char **buf, size_t *len, size_t *cap, uint64_t idx, const spool_exit *rec)
{
    char head[768];
    size_t err_len = rec->error ? strlen(rec->error) : 0;
    int n;

    if (err_len > ERROR_MAX_BYTES)
        err_len = ERROR_MAX_BYTES;
    n = snprintf(head, sizeof(head),
                 "task %" PRIu64 "\nresult_at %" PRIu64 " %" PRIu64 " %" PRIu64 "\nstate %s\n"
                 "exit_status %d\nsignal %d\ntask_pid %ld\nstarted_s %.6f\nended_s %.6f\n"
                 "error %zu\n",
                 idx, rec->result_run, rec->result_off, rec->result_len,
                 rx_task_state_name(rec->state), rec->exit_status, rec->signal, (long)rec->task_pid,
                 rec->started_s, rec->ended_s, err_len);
    if (n < 0 || (size_t)n >= sizeof(head))
        return RX_EIO;
    if (*len + (size_t)n + err_len + 1 > *cap) {
        size_t ncap = (*len + (size_t)n + err_len + 1) * 2;
        char *p = rx__realloc(*buf, ncap);

        if (p == NULL)
            return RX_ENOMEM;
        *buf = p;
        *cap = ncap;
    }
    memcpy(*buf + *len, head, (size_t)n);
    *len += (size_t)n;
    if (err_len > 0)
        memcpy(*buf + *len, rec->error, err_len);
    *len += err_len;
    (*buf)[*len] = '\0';
    return RX_OK;
}

rx_err
spool_run_exit_format(const spool_run_exit *rec, char **out_buf, size_t *out_len)
{
    char *buf;
    size_t len, cap = 4096;
    int n;
    rx_err err = RX_OK;

    buf = rx__malloc(cap);
    if (buf == NULL)
        return RX_ENOMEM;
    n = snprintf(buf, cap,
                 "rxjob-chunk 1\ngo %d\nfirst %" PRIu64 "\ncount %" PRIu64 "\ntasks %zu\n",
                 rec->go ? 1 : 0, rec->first, rec->count, rec->n);
    if (n < 0 || (size_t)n >= cap) {
        rx__free(buf);
        return RX_EIO;
    }
    len = (size_t)n;
    for (size_t i = 0; i < rec->n && err == RX_OK; i++)
        err = entry_append(&buf, &len, &cap, rec->idx[i], &rec->tasks[i]);
    if (err != RX_OK) {
        rx__free(buf);
        return err;
    }
    *out_buf = buf;
    *out_len = len;
    return RX_OK;
}

rx_err
spool_run_exit_write(const char *job_dir, const spool_run_exit *rec)
{
    char *buf = NULL;
    size_t len = 0;
    rx_err err = spool_run_exit_format(rec, &buf, &len);

    return exit_text_write(job_dir, rec->first, err, buf, len);
}

size_t
spool_run_exit_max(uint64_t count)
{
    if (count <= 1)
        return EXIT_RECORD_MAX; /* a run of one: a task's record, or a run record of one entry */
    if (count >= (SIZE_MAX / 4) / (ERROR_MAX_BYTES + 512))
        return SIZE_MAX / 4;
    return EXIT_RECORD_MAX + (size_t)count * (ERROR_MAX_BYTES + 512);
}

/* One entry's fields from "state" to the error's bytes; advances *p. RX_OK; RX_EINVAL;
 * RX_ENOMEM. */
static rx_err
entry_parse(char **p, const char *end, spool_exit *out)
{
    spool_exit rec;
    const char *state;
    int64_t v, err_len;
    int found = 0;

    memset(&rec, 0, sizeof(rec));
    rec.go = 1;
    state = next_field(p, "state");
    if (state == NULL)
        return RX_EINVAL;
    for (int s = 0; s < RX_TASK_STATE_COUNT; s++) {
        if (strcmp(state, rx_task_state_name((rx_task_state)s)) == 0) {
            rec.state = (rx_task_state)s;
            found = 1;
        }
    }
    if (!found || field_i64(p, "exit_status", -1, 255, &v) != 0)
        return RX_EINVAL;
    rec.exit_status = (int)v;
    if (field_i64(p, "signal", 0, 128, &v) != 0)
        return RX_EINVAL;
    rec.signal = (int)v;
    if (field_i64(p, "task_pid", 0, INT32_MAX, &v) != 0)
        return RX_EINVAL;
    rec.task_pid = (pid_t)v;
    if (field_double(p, "started_s", &rec.started_s) != 0 ||
        field_double(p, "ended_s", &rec.ended_s) != 0 ||
        field_i64(p, "error", 0, ERROR_MAX_BYTES, &err_len) != 0 || end - *p < err_len)
        return RX_EINVAL;
    if (err_len > 0) {
        rec.error = rx__memdup(*p, (size_t)err_len);
        if (rec.error == NULL)
            return RX_ENOMEM;
    }
    *p += err_len;
    *out = rec;
    return RX_OK;
}

rx_err
spool_run_exit_parse(char *data, size_t len, uint64_t first, uint64_t count,
                     spool_run_exit *out_rec)
{
    spool_run_exit rec;
    char *p = data;
    int64_t v;
    rx_err err;

    memset(&rec, 0, sizeof(rec));
    rec.first = first;
    rec.count = count;
    if (data[len] != '\0')
        return RX_EINVAL;
    if (strncmp(p, "rxjob-exit 1\n", 13) == 0) {
        /* A task's own record: a run of one. */
        spool_exit one;

        err = count == 1 ? spool_exit_parse(data, len, &one) : RX_EINVAL;
        if (err != RX_OK)
            return err;
        rec.go = one.go;
        if (!one.go) {
            spool_exit_free(&one); /* never ran: nothing of it is kept */
            *out_rec = rec;
            return RX_OK;
        }
        rec.idx = rx__malloc(sizeof(*rec.idx));
        rec.tasks = rx__malloc(sizeof(*rec.tasks));
        if (rec.idx == NULL || rec.tasks == NULL) {
            spool_exit_free(&one);
            spool_run_exit_free(&rec);
            return RX_ENOMEM;
        }
        rec.idx[0] = first;
        rec.tasks[0] = one;
        rec.n = 1;
        *out_rec = rec;
        return RX_OK;
    }
    err = RX_EINVAL;
    if (len > spool_run_exit_max(count) || strncmp(p, "rxjob-chunk 1\n", 14) != 0)
        return RX_EINVAL;
    p += 14;
    if (field_i64(&p, "go", 0, 1, &v) != 0)
        goto done;
    rec.go = (int)v;
    if (field_i64(&p, "first", 0, INT64_MAX, &v) != 0 || (uint64_t)v != first ||
        field_i64(&p, "count", 1, INT64_MAX, &v) != 0 || (uint64_t)v != count ||
        field_i64(&p, "tasks", 0, INT64_MAX, &v) != 0 || (uint64_t)v > count)
        goto done;
    if (v > 0) {
        rec.idx = rx__calloc((size_t)v, sizeof(*rec.idx));
        rec.tasks = rx__calloc((size_t)v, sizeof(*rec.tasks));
        if (rec.idx == NULL || rec.tasks == NULL) {
            err = RX_ENOMEM;
            goto done;
        }
    }
    for (int64_t k = 0; k < v; k++) {
        int64_t idx;
        unsigned long long run, off, rlen;
        const char *at;
        char extra;
        rx_err perr;

        if (field_i64(&p, "task", 0, INT64_MAX, &idx) != 0 || (uint64_t)idx < first ||
            (uint64_t)idx - first >= count || (k > 0 && (uint64_t)idx <= rec.idx[k - 1]))
            goto done;
        at = next_field(&p, "result_at");
        if (at == NULL || sscanf(at, "%llu %llu %llu%c", &run, &off, &rlen, &extra) != 3 ||
            off > INT64_MAX || rlen > INT64_MAX - off)
            goto done;
        perr = entry_parse(&p, data + len, &rec.tasks[k]);
        if (perr != RX_OK) {
            err = perr;
            goto done;
        }
        rec.tasks[k].result_run = run;
        rec.tasks[k].result_off = off;
        rec.tasks[k].result_len = rlen;
        rec.idx[k] = (uint64_t)idx;
        rec.n++;
    }
    if (p != data + len)
        goto done;
    err = RX_OK;
done:
    if (err == RX_OK)
        *out_rec = rec;
    else
        spool_run_exit_free(&rec);
    return err;
}

rx_err
spool_run_exit_read(const char *job_dir, uint64_t first, uint64_t count, spool_run_exit *out_rec)
{
    char path[PATH_MAX];
    void *data = NULL;
    size_t len = 0;
    rx_err err;

    if (spool_task_path(job_dir, first, ".exit", path, sizeof(path)) != 0)
        return RX_EIO;
    err = spool_read_file(path, spool_run_exit_max(count), &data, &len);
    if (err == RX_ETOOBIG)
        return RX_EINVAL;
    if (err != RX_OK)
        return err;
    err = spool_run_exit_parse(data, len, first, count, out_rec);
    rx__free(data);
    return err;
}

void
spool_run_exit_free(spool_run_exit *rec)
{
    if (rec == NULL)
        return;
    for (size_t i = 0; i < rec->n; i++)
        spool_exit_free(&rec->tasks[i]);
    rx__free(rec->idx);
    rx__free(rec->tasks);
    rec->idx = NULL;
    rec->tasks = NULL;
    rec->n = 0;
}

void
spool_exit_free(spool_exit *rec)
{
    if (rec == NULL)
        return;
    rx__free(rec->error);
    rec->error = NULL;
}
