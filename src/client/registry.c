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
 * The table is a plain array filled by constructors, before any thread exists (rxjob.h says to
 * register before starting threads); lookups only read it.
 */
#include "client/registry.h"

#include "core/internal.h"
#include "core/task.h"

#include <errno.h>
#include <fcntl.h>
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

/* Write len bytes to path, replacing it. 0 on success, -1 (errno set) on failure. */
static int
write_file(const char *path, const void *data, size_t len)
{
    const char *p = data;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0)
        return -1;
    while (len > 0) {
        ssize_t put = write(fd, p, len);

        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0) {
            int saved = errno;

            close(fd);
            errno = saved;
            return -1;
        }
        p += put;
        len -= (size_t)put;
    }
    return close(fd);
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
    status = run_task(name);
    rx__free(name);
    exit(status); /* exit, not _exit: the function's buffered stdio must reach the output */
}
