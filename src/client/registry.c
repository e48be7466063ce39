/*
 * registry.c - C functions by name, and rx_init: the other half of running a C function in a
 * process the daemon starts (DESIGN.md section 3).
 *
 * A program registers its task functions before main (RX_FUNCTION expands to a constructor that
 * calls rx_register_function) and calls rx_init first thing in main. When rxjobd runs a task of
 * function work, it starts that same executable again with the task described in the
 * environment (the supervisor sets these; the names are the contract with src/server):
 *
 *     RXJOB_FUNCTION    the registered name to run
 *     RXJOB_ARG         a file holding the task's argument bytes (absent: empty argument)
 *     RXJOB_RESULT      the file to write the result bytes to
 *     RXJOB_ERROR       the file to write the failure message to
 *     RXJOB_TASK_INDEX  the task's 0-based index; RXJOB_TASK_COUNT the job's task count
 *
 * rx_init then runs the function and exits: 0 when it returned 0, 1 when it failed (or its
 * result could not be written), 127 when no function has that name (as a shell says of a
 * command it cannot find). The console output needs no care here: the supervisor already
 * captures file descriptors 1 and 2.
 *
 * A chunk (docs/engine.md "Chunks"): the daemon runs several tasks of one job with one exec of
 * the program. Then the environment has, instead of RXJOB_ARG, RXJOB_RESULT and RXJOB_ERROR:
 *
 *     RXJOB_CHUNK_FD     a pipe to the supervisor (write end)
 *     RXJOB_CHUNK_FIRST  the first task's index; RXJOB_CHUNK_COUNT how many tasks, in a row
 *     RXJOB_CHUNK_STOP   1: stop after the first task that fails (continue_on_failure off)
 *     RXJOB_SPOOL        the job's spool directory: t<i>.out, t<i>.result, t<i>.error are there
 *     RXJOB_ARGS         the job's arguments file (store/work.h "RXA1": an offset table, then
 *                        the bytes; read with pread), absent when the job has no arguments
 *
 * and rx_init runs the tasks in index order. The supervisor made r<FIRST>.out, the output of
 * the task running now (fd 1 and 2 of the program point at it: what the program says before
 * rx_init counts as the first task's); rx_init points fd 1 and 2 at it and writes "s FIRST\n"
 * on the pipe, then per task I: set RXJOB_TASK_INDEX; read the argument (two preads); call the
 * function; append the result to t<FIRST>.results (one file for the chunk's results, one after
 * another) or write the failure to t<I>.error; rename r<FIRST>.out to t<I>.out if the task
 * wrote anything there or is the last (then a fresh r<FIRST>.out for the next: a task that
 * says nothing costs no file, and the last one's file takes what the program says after it);
 * then, in one write, "e I 0 OFFSET LENGTH\n" (ok: its result's place in t<FIRST>.results), or
 * "e I 1\n" (failed), followed by "s I+1\n" when another task follows. The supervisor gives
 * r<FIRST>.out to the task that was running when the program died. (Where t<FIRST>.results cannot
 * be created, each result is t<I>.result and an ok task says "e I 0\n".) It stops after a failure
 * when RXJOB_CHUNK_STOP is 1, and exits 0 after the last task; 127 (before any "s") when no
 * function has the name, with t<FIRST>.error saying so. Every file is created afresh, never opened
 * over what is there: an unnamed file (O_TMPFILE), then linked to its name; or O_CREAT | O_EXCL |
 * O_NOFOLLOW, after an unlink when something is there. The supervisor (src/shim/shim.c run_chunk)
 * enforces the time limit per task from its "s", and ends the task that was running when the
 * program died.
 *
 * The table is a plain array filled by constructors, before any thread exists (rxjob.h says to
 * register before starting threads); lookups only read it.
 */
#define _GNU_SOURCE /* O_TMPFILE */
#include "client/registry.h"

#include "core/internal.h"
#include "core/task.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct reg_entry {
    char name[RX__FUNCTION_NAME_MAX + 1];
    rx_function *fn;
} reg_entry;

static reg_entry *reg_entries = NULL;
static size_t reg_count = 0;
static size_t reg_cap = 0;

int
rx__function_name_ok(const char *name)
{
    size_t len;

    if (name == NULL)
        return 0;
    len = strlen(name);
    if (len == 0 || len > RX__FUNCTION_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';

        if (!ok)
            return 0;
    }
    return 1;
}

rx_err
rx_register_function(const char *name, rx_function *fn)
{
    if (!rx__function_name_ok(name) || fn == NULL)
        return RX_EINVAL;
    for (size_t i = 0; i < reg_count; i++) {
        if (strcmp(reg_entries[i].name, name) == 0) {
            reg_entries[i].fn = fn; /* a later registration replaces the earlier one */
            return RX_OK;
        }
    }
    if (reg_count == reg_cap) {
        size_t cap = reg_cap ? reg_cap * 2 : 16;
        reg_entry *entries = rx__realloc(reg_entries, cap * sizeof(*entries));

        if (entries == NULL)
            return RX_ENOMEM;
        reg_entries = entries;
        reg_cap = cap;
    }
    (void)snprintf(reg_entries[reg_count].name, sizeof(reg_entries[reg_count].name), "%s", name);
    reg_entries[reg_count].fn = fn;
    reg_count++;
    return RX_OK;
}

rx_function *
rx__registry_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < reg_count; i++) {
        if (strcmp(reg_entries[i].name, name) == 0)
            return reg_entries[i].fn;
    }
    return NULL;
}

const char *
rx__registry_name_of(rx_function *fn)
{
    /* From the end: of two names for one function, the later registration is the one named. */
    for (size_t i = reg_count; fn != NULL && i > 0; i--) {
        if (reg_entries[i - 1].fn == fn)
            return reg_entries[i - 1].name;
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * rx_init: run one task handed over by the daemon's supervisor, then exit
 * ------------------------------------------------------------------------------------------- */

/* The largest argument file rx_init reads, in bytes: what the protocol lets a job carry. */
#define INIT_ARG_MAX_BYTES ((size_t)64 * 1024 * 1024)

/* A copy of getenv(name), or NULL when unset (or out of memory: then the caller fails). */
static char *
env_copy(const char *name)
{
    const char *v = getenv(name);

    return v != NULL ? rx__strdup(v) : NULL;
}

/* Read a whole file into a new buffer followed by a NUL. RX_OK; RX_EIO; RX_ETOOBIG; RX_ENOMEM. */
static rx_err
read_file(const char *path, void **out_data, size_t *out_len)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0, cap;
    int fd;
    rx_err err = RX_OK;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return RX_EIO;
    if (fstat(fd, &st) != 0) {
        err = RX_EIO;
        goto done;
    }
    cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
    if (cap > INIT_ARG_MAX_BYTES + 1) {
        err = RX_ETOOBIG;
        goto done;
    }
    buf = rx__malloc(cap);
    if (buf == NULL) {
        err = RX_ENOMEM;
        goto done;
    }
    for (;;) {
        long got;

        if (len + 1 == cap) { /* the file grew, or its size was unknown */
            char *bigger;

            if (cap > INIT_ARG_MAX_BYTES) {
                err = RX_ETOOBIG;
                goto done;
            }
            bigger = rx__realloc(buf, cap * 2);
            if (bigger == NULL) {
                err = RX_ENOMEM;
                goto done;
            }
            buf = bigger;
            cap *= 2;
        }
        got = rx__read_full(fd, buf + len, cap - 1 - len);
        if (got < 0) {
            err = RX_EIO;
            goto done;
        }
        len += (size_t)got;
        if (len + 1 < cap) /* end of file before the buffer was full */
            break;
    }
    buf[len] = '\0';
    *out_data = buf;
    *out_len = len;
    buf = NULL;
done:
    close(fd);
    rx__free(buf);
    return err;
}

static int
write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t put = write(fd, p, len);

        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            return -1;
        p += put;
        len -= (size_t)put;
    }
    return 0;
}

/* Write len bytes to fd and close it; fd < 0 (an open that failed) fails too. 0, or -1 with
 * errno set. */
static int
write_close(int fd, const void *data, size_t len)
{
    if (fd < 0)
        return -1;
    if (write_all(fd, data, len) != 0) {
        int saved = errno;

        close(fd);
        errno = saved;
        return -1;
    }
    return close(fd);
}

/* Write len bytes to path, replacing it. 0 on success, -1 (errno set) on failure. */
static int
write_file(const char *path, const void *data, size_t len)
{
    return write_close(open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), data, len);
}

/* Write the failure message where the daemon reads it (best effort: the exit status says it
 * failed in any case). */
static void
write_error(const char *error_path, const char *msg)
{
    if (error_path != NULL)
        (void)write_file(error_path, msg, strlen(msg));
}

/* Run the task described by the environment; returns the process exit status. */
static int
run_task(const char *name)
{
    char *arg_path = env_copy("RXJOB_ARG");
    char *result_path = env_copy("RXJOB_RESULT");
    char *error_path = env_copy("RXJOB_ERROR");
    const char *index_env = getenv("RXJOB_TASK_INDEX");
    char msg[4096 + 256];
    rx_task task;
    rx_function *fn;
    void *arg = NULL;
    size_t arg_len = 0;
    int64_t index = 0;
    int status = 1;
    int rc;

    memset(&task, 0, sizeof(task));
    if (name == NULL)
        goto done;
    /* The function may start programs of its own, perhaps this one: they must not take the
     * task for theirs. RXJOB_TASK_INDEX and RXJOB_TASK_COUNT stay, as a command task sees them. */
    (void)unsetenv("RXJOB_FUNCTION");
    (void)unsetenv("RXJOB_ARG");
    (void)unsetenv("RXJOB_RESULT");
    (void)unsetenv("RXJOB_ERROR");

    fn = rx__registry_find(name);
    if (fn == NULL) {
        (void)snprintf(msg, sizeof(msg),
                       "no function named '%s' is registered in this program (RX_FUNCTION)", name);
        write_error(error_path, msg);
        status = 127;
        goto done;
    }
    if (index_env != NULL && rx__parse_i64(index_env, 0, RX_MAX_TASKS, &index) != RX_OK) {
        (void)snprintf(msg, sizeof(msg), "rx_init: bad RXJOB_TASK_INDEX '%s'", index_env);
        write_error(error_path, msg);
        goto done;
    }
    if (arg_path != NULL) {
        rx_err err = read_file(arg_path, &arg, &arg_len);

        if (err != RX_OK) {
            (void)snprintf(msg, sizeof(msg), "rx_init: read argument '%s' failed: %s", arg_path,
                           err == RX_EIO ? strerror(errno) : rx_strerror(err));
            write_error(error_path, msg);
            goto done;
        }
    }
    task.arg = arg != NULL ? arg : "";
    task.arg_len = arg_len;
    task.index = (size_t)index;

    rc = fn(&task);
    (void)fflush(stdout);
    (void)fflush(stderr);
    if (rc != 0) {
        if (task.error != NULL)
            write_error(error_path, task.error);
        else {
            (void)snprintf(msg, sizeof(msg), "function '%s' returned %d", name, rc);
            write_error(error_path, msg);
        }
        goto done;
    }
    if (result_path != NULL && write_file(result_path, task.value ? task.value : "",
                                          task.value ? task.value_len : 0) != 0) {
        (void)snprintf(msg, sizeof(msg), "rx_init: write result '%s' failed: %s", result_path,
                       strerror(errno));
        write_error(error_path, msg);
        goto done;
    }
    status = 0;
done:
    rx__task_reset(&task);
    rx__free(arg);
    rx__free(arg_path);
    rx__free(result_path);
    rx__free(error_path);
    return status;
}

/* ---------------------------------------------------------------------------------------------
 * rx_init for a chunk: several tasks in a row (the header comment)
 * ------------------------------------------------------------------------------------------- */

#define ARGS_MAGIC "RXA1"

static int write_fresh(const char *path, const void *data, size_t len);

/* An unnamed file in dir (O_TMPFILE), or -1 where the file system has none. Its inode is
 * allocated without the directory's lock, which a create holds meanwhile: on ext4, with the
 * inodes of removed spools about, that allocation is most of a chunk task's cost, and the other
 * slot's program waited on the lock for it. */
static int
create_unnamed(const char *dir)
{
    return open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
}

/* Give the unnamed file fd the name path, replacing whatever is there (as create_fresh). 0, or
 * -1 (errno set). */
static int
link_unnamed(int fd, const char *path)
{
    char proc[64];

    (void)snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0)
        return 0;
    if (errno != EEXIST)
        return -1;
    (void)unlink(path);
    return linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
}

/* A new file at path in dir, afresh: unnamed first, then linked; create_fresh where that cannot
 * be done. fd, or -1. */
static int
create_in(const char *dir, const char *path)
{
    int fd = create_unnamed(dir);

    if (fd >= 0 && link_unnamed(fd, path) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return rx__create_fresh(path);
}

/* Write path afresh in dir: the bytes into an unnamed file, then the name (whole or not at
 * all); create_fresh and write where that cannot be done. 0, or -1 (errno set). */
static int
write_in(const char *dir, const char *path, const void *data, size_t len)
{
    int fd = create_unnamed(dir);

    if (fd >= 0) {
        if (write_all(fd, data, len) == 0 && link_unnamed(fd, path) == 0)
            return close(fd);
        close(fd);
    }
    return write_fresh(path, data, len);
}

static int
write_fresh(const char *path, const void *data, size_t len)
{
    return write_close(rx__create_fresh(path), data, len);
}

static int
pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static uint64_t
le64(const unsigned char *b)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

/* Argument i of the RXA1 file fd (store/work.h): two preads. RX_OK; RX_EIO; RX_EINVAL;
 * RX_ETOOBIG; RX_ENOMEM. */
static rx_err
chunk_arg(int fd, uint64_t i, void **out, size_t *out_len)
{
    unsigned char head[16], offs[16];
    uint64_t n, from, to;
    char *data;

    if (pread_full(fd, head, sizeof(head), 0) != 0)
        return RX_EIO;
    n = le64(head + 8);
    if (memcmp(head, ARGS_MAGIC, 4) != 0 || i >= n || n > (UINT64_MAX - 16) / 8 - 1)
        return RX_EINVAL;
    if (pread_full(fd, offs, sizeof(offs), 16 + 8 * i) != 0)
        return RX_EIO;
    from = le64(offs);
    to = le64(offs + 8);
    if (to < from)
        return RX_EINVAL;
    if (to - from > INIT_ARG_MAX_BYTES)
        return RX_ETOOBIG;
    data = rx__malloc((size_t)(to - from) + 1);
    if (data == NULL)
        return RX_ENOMEM;
    if (to > from && pread_full(fd, data, (size_t)(to - from), 16 + 8 * (n + 1) + from) != 0) {
        rx__free(data);
        return RX_EIO;
    }
    data[to - from] = '\0';
    *out = data;
    *out_len = (size_t)(to - from);
    return RX_OK;
}

/* Say "e I STATUS", or "e I 0 OFFSET LENGTH" (at: the result is in the chunk's results file),
 * unless status < 0; then "s NEXT" unless next < 0: one write, one wake-up of the supervisor per
 * task. A supervisor gone means nobody records anything: exit. */
static void
chunk_say(int fd, uint64_t i, int status, const uint64_t *at, int64_t next)
{
    char line[160];
    int n = 0;

    if (status >= 0 && at != NULL)
        n = snprintf(line, sizeof(line), "e %" PRIu64 " 0 %" PRIu64 " %" PRIu64 "\n", i, at[0],
                     at[1]);
    else if (status >= 0)
        n = snprintf(line, sizeof(line), "e %" PRIu64 " %d\n", i, status);
    if (next >= 0)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "s %" PRId64 "\n", next);
    for (;;) {
        ssize_t put = write(fd, line, (size_t)n);

        if (put < 0 && errno == EINTR)
            continue;
        if (put != n)
            _exit(1);
        return;
    }
}

/* The output file of the task running now, r<first>.out; the chunk's results file. */
typedef struct chunk_out {
    int fd;               /* r<first>.out, also fd 1 and 2; or -1 when it could not be made */
    char path[PATH_MAX];  /* r<first>.out */
    int results_fd;       /* t<first>.results, or -1: then each result is t<i>.result */
    uint64_t results_end; /* bytes of it written (the next result's offset) */
    uint64_t at[2];       /* the last result's offset and length in it */
    int in_file;          /* the last task's result is there */
} chunk_out;

/* Point fd 1 and 2 at out->fd. */
static void
chunk_out_redirect(chunk_out *out)
{
    if (out->fd >= 0) {
        (void)dup2(out->fd, 1);
        (void)dup2(out->fd, 2);
    }
}

/* After task i: its output becomes t<i>.out when it wrote any, or when it is the last (what the
 * program writes after its last task goes there, as it did for a task of its own); the next task
 * gets a fresh r<first>.out. A task that wrote nothing leaves the file to the next one: no
 * rename, no new inode; but fd 1 and 2 are pointed at it again (the task may have closed them or
 * pointed them elsewhere), and a file the task removed is not kept (the next one's output would
 * go nowhere). */
static void
chunk_out_end(chunk_out *out, const char *dir, uint64_t i, int last)
{
    char path[PATH_MAX];
    struct stat st;

    if (out->fd < 0)
        return;
    if (!last && fstat(out->fd, &st) == 0 && st.st_size == 0 && st.st_nlink > 0) {
        chunk_out_redirect(out);
        return;
    }
    (void)snprintf(path, sizeof(path), "%s/t%" PRIu64 ".out", dir, i);
    (void)rename(out->path, path);
    if (last)
        return;
    close(out->fd);
    out->fd = create_in(dir, out->path);
    chunk_out_redirect(out);
}

/* Append a result to the chunk's results file. 0, or -1 (errno set). */
static int
results_append(chunk_out *out, const void *data, size_t len)
{
    const char *p = data;
    uint64_t off = out->results_end;

    for (size_t done = 0; done < len;) {
        ssize_t put = pwrite(out->results_fd, p + done, len - done, (off_t)(off + done));

        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            return -1;
        done += (size_t)put;
    }
    out->at[0] = off;
    out->at[1] = len;
    out->results_end = off + len;
    out->in_file = 1;
    return 0;
}

/* One task of the chunk. 0 ok, 1 failed. */
static int
chunk_task(rx_function *fn, const char *name, const char *dir, const char *args_path, int args_fd,
           int args_errno, chunk_out *out, uint64_t i)
{
    char path[PATH_MAX], idx[32], msg[4096 + 256];
    rx_task task;
    void *arg = NULL;
    size_t arg_len = 0;
    int status = 1, rc;

    memset(&task, 0, sizeof(task));
    out->in_file = 0;
    (void)snprintf(idx, sizeof(idx), "%" PRIu64, i);
    (void)setenv("RXJOB_TASK_INDEX", idx, 1);
    msg[0] = '\0';
    if (out->fd < 0)
        (void)snprintf(msg, sizeof(msg), "rx_init: create '%s' failed", out->path);
    if (msg[0] == '\0' && args_path != NULL && args_fd < 0)
        (void)snprintf(msg, sizeof(msg), "rx_init: open arguments '%s' failed: %s", args_path,
                       strerror(args_errno));
    if (msg[0] == '\0' && args_fd >= 0) {
        rx_err err = chunk_arg(args_fd, i, &arg, &arg_len);

        if (err != RX_OK)
            (void)snprintf(msg, sizeof(msg), "rx_init: read argument %" PRIu64 " failed: %s", i,
                           err == RX_EIO ? strerror(errno) : rx_strerror(err));
    }
    if (msg[0] == '\0') {
        task.arg = arg != NULL ? arg : "";
        task.arg_len = arg_len;
        task.index = (size_t)i;
        rc = fn(&task);
        (void)fflush(stdout);
        (void)fflush(stderr);
        (void)snprintf(path, sizeof(path), "%s/t%" PRIu64 ".result", dir, i);
        if (rc != 0) {
            if (task.error != NULL)
                (void)snprintf(msg, sizeof(msg), "%s", task.error);
            else
                (void)snprintf(msg, sizeof(msg), "function '%s' returned %d", name, rc);
        } else if (out->results_fd >= 0 ? results_append(out, task.value ? task.value : "",
                                                         task.value ? task.value_len : 0) != 0
                                        : write_in(dir, path, task.value ? task.value : "",
                                                   task.value ? task.value_len : 0) != 0) {
            (void)snprintf(msg, sizeof(msg), "rx_init: write result '%s' failed: %s", path,
                           strerror(errno));
        } else {
            status = 0;
        }
    }
    if (status != 0) {
        (void)snprintf(path, sizeof(path), "%s/t%" PRIu64 ".error", dir, i);
        (void)write_in(dir, path, msg, strlen(msg));
    }
    rx__task_reset(&task);
    rx__free(arg);
    return status;
}

/* Run the chunk the environment describes; returns the process exit status. */
static int
run_chunk(const char *name)
{
    char *dir = env_copy("RXJOB_SPOOL");
    char *args_path = env_copy("RXJOB_ARGS");
    const char *fd_env = getenv("RXJOB_CHUNK_FD"), *first_env = getenv("RXJOB_CHUNK_FIRST");
    const char *count_env = getenv("RXJOB_CHUNK_COUNT"), *stop_env = getenv("RXJOB_CHUNK_STOP");
    int64_t fd = -1, first = 0, count = 0;
    int stop = stop_env != NULL && strcmp(stop_env, "1") == 0;
    int args_fd = -1, args_errno = 0, status = 1;
    chunk_out out = {.fd = -1, .results_fd = -1};
    rx_function *fn;

    if (fd_env == NULL || rx__parse_i64(fd_env, 3, INT32_MAX, &fd) != RX_OK || first_env == NULL ||
        rx__parse_i64(first_env, 0, RX_MAX_TASKS, &first) != RX_OK || count_env == NULL ||
        rx__parse_i64(count_env, 1, RX_MAX_TASKS, &count) != RX_OK || dir == NULL) {
        (void)fprintf(stderr, "rx_init: bad chunk environment\n");
        goto done;
    }
    (void)fcntl((int)fd, F_SETFD, FD_CLOEXEC); /* programs the function starts must not have it */
    (void)unsetenv("RXJOB_FUNCTION");
    (void)unsetenv("RXJOB_CHUNK_FD");
    (void)unsetenv("RXJOB_CHUNK_FIRST");
    (void)unsetenv("RXJOB_CHUNK_COUNT");
    (void)unsetenv("RXJOB_CHUNK_STOP");
    (void)unsetenv("RXJOB_SPOOL");
    (void)unsetenv("RXJOB_ARGS");
    fn = rx__registry_find(name);
    if (fn == NULL) {
        char path[PATH_MAX], msg[512];

        (void)snprintf(msg, sizeof(msg),
                       "no function named '%s' is registered in this program (RX_FUNCTION)", name);
        (void)snprintf(path, sizeof(path), "%s/t%" PRId64 ".error", dir, first);
        (void)write_fresh(path, msg, strlen(msg));
        status = 127;
        goto done;
    }
    if (args_path != NULL) {
        args_fd = open(args_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        args_errno = errno; /* unreadable: each task fails saying so */
    }
    /* The results of the chunk, one after another in one file: one new inode per chunk, not
     * per task. */
    {
        char path[PATH_MAX];

        (void)snprintf(path, sizeof(path), "%s/t%" PRId64 ".results", dir, first);
        out.results_fd = create_in(dir, path);
    }
    /* The supervisor's r<first>.out, fd 1 and 2 already; opened here by name, since the
     * program may have moved its fd 1 before calling rx_init. Made afresh if it is gone. */
    (void)snprintf(out.path, sizeof(out.path), "%s/r%" PRId64 ".out", dir, first);
    out.fd = open(out.path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (out.fd < 0)
        out.fd = create_in(dir, out.path);
    chunk_out_redirect(&out);
    chunk_say((int)fd, 0, -1, NULL, first);
    for (int64_t i = first; i < first + count; i++) {
        int failed = chunk_task(fn, name, dir, args_path, args_fd, args_errno, &out, (uint64_t)i);
        int64_t next = i + 1 < first + count && !(failed && stop) ? i + 1 : -1;

        chunk_out_end(&out, dir, (uint64_t)i, next < 0);
        chunk_say((int)fd, (uint64_t)i, failed, !failed && out.in_file ? out.at : NULL, next);
        if (next < 0)
            break;
    }
    status = 0;
done:
    if (out.fd >= 0)
        close(out.fd);
    if (out.results_fd >= 0)
        close(out.results_fd);
    if (args_fd >= 0)
        close(args_fd);
    rx__free(dir);
    rx__free(args_path);
    return status;
}

void
rx_init(int *argc, char ***argv)
{
    char *name;
    int status;

    (void)argc; /* the daemon passes no arguments of its own: nothing to take out */
    (void)argv;
    if (getenv("RXJOB_FUNCTION") == NULL)
        return;
    name = env_copy("RXJOB_FUNCTION");
    if (name == NULL) {
        write_error(getenv("RXJOB_ERROR"), "rx_init: out of memory");
        exit(1);
    }
    status = getenv("RXJOB_CHUNK_FD") != NULL ? run_chunk(name) : run_task(name);
    rx__free(name);
    exit(status); /* exit, not _exit: the function's buffered stdio must reach the output */
}
