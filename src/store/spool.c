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
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The longest a job directory's removal as its user may take, milliseconds (remove_tree_as). */
#define SPOOL_REMOVE_AS_MS 30000

#define EXIT_RECORD_MAX (64 * 1024) /* bytes; an error message is cut well below this */
#define ERROR_MAX_BYTES 4096

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

/* Empty the directory open at dfd (closed here) with the rights of uid and gid only: from a
 * child that has become them, so that what a user moved into a job directory it owns (a
 * directory of its own holding root's files) is removed only as far as that user could remove it
 * itself. RX_OK; RX_EIO. */
static rx_err
remove_tree_as(int dfd, uid_t uid, gid_t gid)
{
    sigset_t all, old;
    int status = 0;
    pid_t pid;

    sigfillset(&all);
    (void)pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 ||
            setresuid(uid, uid, uid) != 0 || setuid(0) == 0)
            _exit(2);
        (void)fchmod(dfd, S_IRWXU); /* the user's: a task may have closed it to itself */
        _exit(remove_tree_at(dfd, SPOOL_MAX_DEPTH) == RX_OK ? 0 : 1);
    }
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(dfd);
    /* Bounded: the child is the user's, who could stop it or keep it busy in a tree of their
     * making; what is left then stays, and the caller logs it. */
    if (pid < 0 || rx__wait_child_deadline(pid, SPOOL_REMOVE_AS_MS, &status) != 0) {
        errno = ETIMEDOUT;
        return RX_EIO;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return RX_OK;
    errno = EPERM;
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

static rx_err exit_write(const char *job_dir, uint64_t idx, const spool_exit *rec, int durable);

rx_err
spool_exit_write(const char *job_dir, uint64_t idx, const spool_exit *rec)
{
    return exit_write(job_dir, idx, rec, 1);
}

rx_err
spool_exit_write_nosync(const char *job_dir, uint64_t idx, const spool_exit *rec)
{
    return exit_write(job_dir, idx, rec, 0);
}

rx_err
spool_exit_sync(const char *job_dir, uint64_t idx)
{
    char path[PATH_MAX];
    int fd, rc;

    if (snprintf(path, sizeof(path), "%s/t%" PRIu64 ".exit", job_dir, idx) >= (int)sizeof(path))
        return RX_EIO;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return RX_EIO;
    rc = fsync(fd);
    close(fd);
    if (rc != 0 || fsync_dir(job_dir) != 0)
        return RX_EIO;
    return RX_OK;
}

/* The fields of one task's record after its first line, into a new buffer. */
static char *
exit_format(const spool_exit *rec, const char *lead, size_t *out_len)
{
    char head[512];
    char *buf;
    size_t err_len = rec->error ? strlen(rec->error) : 0;
    int n;

    if (err_len > ERROR_MAX_BYTES)
        err_len = ERROR_MAX_BYTES;
    n = snprintf(head, sizeof(head),
                 "%sstate %s\nexit_status %d\nsignal %d\ntask_pid %ld\n"
                 "started_s %.6f\nended_s %.6f\nerror %zu\n",
                 lead, rx_task_state_name(rec->state), rec->exit_status, rec->signal,
                 (long)rec->task_pid, rec->started_s, rec->ended_s, err_len);
    if (n < 0 || (size_t)n >= sizeof(head))
        return NULL;
    buf = rx__malloc((size_t)n + err_len + 1);
    if (buf == NULL)
        return NULL;
    memcpy(buf, head, (size_t)n);
    if (err_len > 0)
        memcpy(buf + n, rec->error, err_len);
    *out_len = (size_t)n + err_len;
    return buf;
}

static rx_err
exit_write(const char *job_dir, uint64_t idx, const spool_exit *rec, int durable)
{
    char name[64], lead[64];
    char *buf;
    size_t len = 0;
    rx_err err;

    (void)snprintf(lead, sizeof(lead), "rxjob-exit 1\ngo %d\n", rec->go ? 1 : 0);
    buf = exit_format(rec, lead, &len);
    if (buf == NULL)
        return RX_ENOMEM;
    (void)snprintf(name, sizeof(name), "t%" PRIu64 ".exit", idx);
    err = spool_write_atomic(job_dir, name, buf, len, durable);
    rx__free(buf);
    return err;
}

rx_err
spool_run_exit_write(const char *job_dir, const spool_run_exit *rec, int durable)
{
    char name[64], lead[128];
    char *all = NULL;
    size_t len = 0, cap = 0;
    rx_err err = RX_ENOMEM;
    int n;

    n = snprintf(lead, sizeof(lead),
                 "rxjob-chunk 1\ngo %d\nfirst %" PRIu64 "\ncount %" PRIu64 "\ntasks %zu\n",
                 rec->go ? 1 : 0, rec->first, rec->count, rec->n);
    cap = (size_t)n + 256;
    all = rx__malloc(cap);
    if (all == NULL)
        return RX_ENOMEM;
    memcpy(all, lead, (size_t)n);
    len = (size_t)n;
    for (size_t i = 0; i < rec->n; i++) {
        size_t elen = 0;
        char *e;

        (void)snprintf(lead, sizeof(lead),
                       "task %" PRIu64 "\nresult_at %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
                       rec->idx[i], rec->tasks[i].result_run, rec->tasks[i].result_off,
                       rec->tasks[i].result_len);
        e = exit_format(&rec->tasks[i], lead, &elen);
        if (e == NULL)
            goto done;
        if (len + elen > cap) {
            size_t ncap = (len + elen) * 2;
            char *p = rx__realloc(all, ncap);

            if (p == NULL) {
                rx__free(e);
                goto done;
            }
            all = p;
            cap = ncap;
        }
        memcpy(all + len, e, elen);
        len += elen;
        rx__free(e);
    }
    (void)snprintf(name, sizeof(name), "t%" PRIu64 ".exit", rec->first);
    err = spool_write_atomic(job_dir, name, all, len, durable);
done:
    rx__free(all);
    return err;
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

/* One task's fields from "state" to the error's bytes; advances *p. RX_OK; RX_EINVAL;
 * RX_ENOMEM. */
static rx_err
exit_parse(char **p, const char *end, spool_exit *out)
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
        field_double(p, "ended_s", &rec.ended_s) != 0)
        return RX_EINVAL;
    if (field_i64(p, "error", 0, ERROR_MAX_BYTES, &err_len) != 0)
        return RX_EINVAL;
    if (end - *p < err_len)
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

/* Read t<idx>.exit whole (up to max bytes), NUL-terminated. */
static rx_err
exit_load(const char *job_dir, uint64_t idx, size_t max, void **out_data, size_t *out_len)
{
    char path[PATH_MAX];
    rx_err err;

    if (spool_task_path(job_dir, idx, ".exit", path, sizeof(path)) != 0)
        return RX_EIO;
    err = spool_read_file(path, max, out_data, out_len);
    return err == RX_ETOOBIG ? RX_EINVAL : err;
}

/* A task's record from its loaded text. */
static rx_err
exit_parse_task(char *data, size_t len, spool_exit *out_rec)
{
    char *p = data;
    int64_t v;
    int go;
    rx_err err;

    if (strncmp(p, "rxjob-exit 1\n", 13) != 0)
        return RX_EINVAL;
    p += 13;
    if (field_i64(&p, "go", 0, 1, &v) != 0)
        return RX_EINVAL;
    go = (int)v;
    err = exit_parse(&p, data + len, out_rec);
    if (err != RX_OK)
        return err;
    out_rec->go = go;
    if (p != data + len) {
        spool_exit_free(out_rec);
        return RX_EINVAL;
    }
    return RX_OK;
}

rx_err
spool_exit_read(const char *job_dir, uint64_t idx, spool_exit *out_rec)
{
    void *data = NULL;
    size_t len = 0;
    rx_err err = exit_load(job_dir, idx, EXIT_RECORD_MAX, &data, &len);

    if (err == RX_OK)
        err = exit_parse_task(data, len, out_rec);
    rx__free(data);
    return err;
}

rx_err
spool_run_exit_read(const char *job_dir, uint64_t first, uint64_t count, spool_run_exit *out_rec)
{
    spool_run_exit rec;
    void *data = NULL;
    size_t len = 0, max;
    char *p;
    int64_t v;
    rx_err err;

    memset(&rec, 0, sizeof(rec));
    rec.first = first;
    rec.count = count;
    /* Room for every task's record with a whole error message. */
    max = count < (SIZE_MAX / 2) / (ERROR_MAX_BYTES + 512)
              ? EXIT_RECORD_MAX + count * (ERROR_MAX_BYTES + 512)
              : SIZE_MAX / 2;
    err = exit_load(job_dir, first, max, &data, &len);
    if (err != RX_OK)
        return err;
    p = data;
    if (strncmp(p, "rxjob-exit 1\n", 13) == 0) {
        /* A task's own record: a run of one. */
        spool_exit one;

        err = count == 1 ? exit_parse_task(data, len, &one) : RX_EINVAL;
        if (err != RX_OK)
            goto done;
        rec.go = one.go;
        if (!one.go)
            spool_exit_free(&one); /* never ran: nothing of it is kept */
        if (one.go) {
            rec.idx = rx__malloc(sizeof(*rec.idx));
            rec.tasks = rx__malloc(sizeof(*rec.tasks));
            if (rec.idx == NULL || rec.tasks == NULL) {
                spool_exit_free(&one);
                err = RX_ENOMEM;
                goto done;
            }
            rec.idx[0] = first;
            rec.tasks[0] = one;
            rec.n = 1;
        }
        goto done;
    }
    err = RX_EINVAL;
    if (strncmp(p, "rxjob-chunk 1\n", 14) != 0)
        goto done;
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
        perr = exit_parse(&p, (char *)data + len, &rec.tasks[k]);
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
    if (p != (char *)data + len)
        goto done;
    err = RX_OK;
done:
    rx__free(data);
    if (err == RX_OK)
        *out_rec = rec;
    else
        spool_run_exit_free(&rec);
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
