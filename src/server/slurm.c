/*
 * slurm.c - running Slurm's commands and reading what they print (see slurm.h).
 *
 * A command runs with posix_spawnp: stdin, stdout and stderr on pipes, every other descriptor
 * closed (the daemon's sockets and database must not leak into sbatch), signals at their
 * defaults. One poll loop feeds stdin and drains both outputs, so a command that prints a lot
 * cannot block on a full pipe while we wait for it; after the time limit it is killed.
 */
#define _GNU_SOURCE /* posix_spawn_file_actions_addclosefrom_np */
#include "server/slurm.h"

#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---------------------------------------------------------------------------------------------
 * Running a command
 * ------------------------------------------------------------------------------------------- */

typedef struct sink {
    char *buf;
    size_t len;
    size_t cap;
    size_t max;
} sink;

static int
sink_add(sink *s, const char *data, size_t n)
{
    if (s->len + n > s->max)
        n = s->max - s->len; /* the rest is read and dropped */
    if (n == 0)
        return 0;
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        char *p;

        while (cap < s->len + n + 1)
            cap *= 2;
        p = rx__realloc(s->buf, cap);
        if (p == NULL)
            return -1;
        s->buf = p;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return 0;
}

static void
close_pair(int p[2])
{
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
    p[0] = p[1] = -1;
}

rx_err
slurm_run_cmd(const char *const *argv, const void *stdin_data, size_t stdin_len, int64_t timeout_ms,
              slurm_run *out_run)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    sink so = {.max = SLURM_OUT_MAX_BYTES}, se = {.max = SLURM_ERR_MAX_BYTES};
    const char *feed = stdin_data;
    size_t fed = 0;
    int64_t deadline = rx__now_ms() + timeout_ms;
    pid_t pid = 0;
    rx_err rc = RX_OK;
    int status = 0;

    memset(out_run, 0, sizeof(*out_run));
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
        out_run->errno_start = errno;
        goto done;
    }
    if (posix_spawn_file_actions_init(&fa) != 0) {
        out_run->errno_start = ENOMEM;
        goto done;
    }
    if (posix_spawnattr_init(&attr) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        out_run->errno_start = ENOMEM;
        goto done;
    }
    sigemptyset(&none);
    sigfillset(&all);
    status = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (status == 0)
        status = posix_spawnattr_setsigmask(&attr, &none);
    if (status == 0)
        status = posix_spawnattr_setsigdefault(&attr, &all);
    if (status == 0)
        status = posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    if (status == 0)
        status = posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    if (status == 0)
        status = posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    if (status == 0)
        status = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (status == 0)
        status = posix_spawnp(&pid, argv[0], &fa, &attr, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (status != 0) {
        out_run->errno_start = status;
        goto done;
    }
    out_run->started = 1;
    close(in[0]);
    close(out[1]);
    close(err[1]);
    in[0] = out[1] = err[1] = -1;
    if (stdin_len == 0) {
        close(in[1]);
        in[1] = -1;
    } else {
        (void)fcntl(in[1], F_SETFL, O_NONBLOCK);
    }

    while (out[0] >= 0 || err[0] >= 0) {
        struct pollfd pfd[3];
        int *fds[3];
        nfds_t n = 0;
        int64_t left = deadline - rx__now_ms();
        int prc;

        if (left <= 0) {
            out_run->timed_out = 1;
            (void)kill(pid, SIGKILL);
            break;
        }
        if (in[1] >= 0) {
            pfd[n].fd = in[1];
            pfd[n].events = POLLOUT;
            fds[n++] = &in[1];
        }
        if (out[0] >= 0) {
            pfd[n].fd = out[0];
            pfd[n].events = POLLIN;
            fds[n++] = &out[0];
        }
        if (err[0] >= 0) {
            pfd[n].fd = err[0];
            pfd[n].events = POLLIN;
            fds[n++] = &err[0];
        }
        prc = poll(pfd, n, left > 60000 ? 60000 : (int)left);
        if (prc < 0 && errno == EINTR)
            continue;
        if (prc < 0) {
            (void)kill(pid, SIGKILL);
            break;
        }
        for (nfds_t k = 0; k < n; k++) {
            char buf[16384];
            ssize_t got;

            if (pfd[k].revents == 0)
                continue;
            if (fds[k] == &in[1]) {
                got = write(in[1], feed + fed, stdin_len - fed);
                if (got > 0)
                    fed += (size_t)got;
                if ((got < 0 && errno != EAGAIN && errno != EINTR) || fed == stdin_len) {
                    close(in[1]);
                    in[1] = -1;
                }
                continue;
            }
            got = read(*fds[k], buf, sizeof(buf));
            if (got < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (got <= 0) {
                close(*fds[k]);
                *fds[k] = -1;
                continue;
            }
            if (sink_add(fds[k] == &out[0] ? &so : &se, buf, (size_t)got) != 0) {
                rc = RX_ENOMEM;
                (void)kill(pid, SIGKILL);
                close(*fds[k]);
                *fds[k] = -1;
            }
        }
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            status = 0x7f00; /* "exit status 127": it ran, we cannot tell how it ended */
            break;
        }
    }
    out_run->wstatus = status;

done:
    close_pair(in);
    close_pair(out);
    close_pair(err);
    if (rc != RX_OK) {
        rx__free(so.buf);
        rx__free(se.buf);
        memset(out_run, 0, sizeof(*out_run));
        return rc;
    }
    if (so.buf == NULL)
        so.buf = rx__strdup("");
    if (se.buf == NULL)
        se.buf = rx__strdup("");
    if (so.buf == NULL || se.buf == NULL) {
        rx__free(so.buf);
        rx__free(se.buf);
        memset(out_run, 0, sizeof(*out_run));
        return RX_ENOMEM;
    }
    while (se.len > 0 && (se.buf[se.len - 1] == '\n' || se.buf[se.len - 1] == '\r'))
        se.buf[--se.len] = '\0';
    out_run->out = so.buf;
    out_run->out_len = so.len;
    out_run->err = se.buf;
    out_run->err_len = se.len;
    return RX_OK;
}

int
slurm_run_ok(const slurm_run *r)
{
    return r->started && !r->timed_out && WIFEXITED(r->wstatus) && WEXITSTATUS(r->wstatus) == 0;
}

void
slurm_run_why(const slurm_run *r, char *buf, size_t len)
{
    const char *last;

    if (!r->started) {
        (void)snprintf(buf, len, "cannot run it: %s", strerror(r->errno_start));
        return;
    }
    if (r->timed_out) {
        (void)snprintf(buf, len, "it did not answer in time and was killed");
        return;
    }
    if (r->err != NULL && r->err[0] != '\0') {
        last = strrchr(r->err, '\n');
        (void)snprintf(buf, len, "%s", last != NULL ? last + 1 : r->err);
        return;
    }
    if (WIFEXITED(r->wstatus))
        (void)snprintf(buf, len, "exit status %d", WEXITSTATUS(r->wstatus));
    else if (WIFSIGNALED(r->wstatus))
        (void)snprintf(buf, len, "killed by signal %d", WTERMSIG(r->wstatus));
    else
        (void)snprintf(buf, len, "it failed");
}

void
slurm_run_free(slurm_run *r)
{
    if (r == NULL)
        return;
    rx__free(r->out);
    rx__free(r->err);
    r->out = r->err = NULL;
    r->out_len = r->err_len = 0;
}

int
slurm_err_transient(const char *err)
{
    static const char *const words[] = {
        "Unable to contact slurm controller",
        "Socket timed out",
        "Zero Bytes were transmitted",
        "Connection refused",
        "Resource temporarily unavailable",
        "try again",
        "Slurm temporarily unable",
        "Slurmctld is busy",
        "slurmctld is busy",
        "Communication connection failure",
        "Protocol authentication error",
    };

    if (err == NULL)
        return 0;
    for (size_t i = 0; i < RX__ARRAY_LEN(words); i++)
        if (strstr(err, words[i]) != NULL)
            return 1;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * States
 * ------------------------------------------------------------------------------------------- */

typedef struct state_info {
    const char *name;
    slurm_phase phase;
} state_info;

static const state_info states[] = {
    {"PENDING", SLURM_QUEUED},          {"CONFIGURING", SLURM_QUEUED},
    {"REQUEUED", SLURM_QUEUED},         {"REQUEUE_HOLD", SLURM_QUEUED},
    {"REQUEUE_FED", SLURM_QUEUED},      {"RESV_DEL_HOLD", SLURM_QUEUED},
    {"RUNNING", SLURM_RUNNING},         {"COMPLETING", SLURM_RUNNING},
    {"SUSPENDED", SLURM_RUNNING},       {"STOPPED", SLURM_RUNNING},
    {"SIGNALING", SLURM_RUNNING},       {"STAGE_OUT", SLURM_RUNNING},
    {"RESIZING", SLURM_RUNNING},        {"COMPLETED", SLURM_DONE_OK},
    {"FAILED", SLURM_DONE_FAIL},        {"TIMEOUT", SLURM_DONE_FAIL},
    {"OUT_OF_MEMORY", SLURM_DONE_FAIL}, {"NODE_FAIL", SLURM_DONE_FAIL},
    {"BOOT_FAIL", SLURM_DONE_FAIL},     {"DEADLINE", SLURM_DONE_FAIL},
    {"PREEMPTED", SLURM_DONE_FAIL},     {"CANCELLED", SLURM_DONE_FAIL},
    {"REVOKED", SLURM_DONE_FAIL},       {"SPECIAL_EXIT", SLURM_DONE_FAIL},
};

slurm_phase
slurm_state_phase(const char *state)
{
    size_t n = strcspn(state, " +");

    for (size_t i = 0; i < RX__ARRAY_LEN(states); i++)
        if (strlen(states[i].name) == n && strncmp(states[i].name, state, n) == 0)
            return states[i].phase;
    return SLURM_RUNNING;
}

static int
state_is(const char *state, const char *name)
{
    size_t n = strlen(name);

    return strncmp(state, name, n) == 0 && (state[n] == '\0' || state[n] == ' ' || state[n] == '+');
}

void
slurm_failure(const char *state, const char *reason, const char *record_text,
              rx_task_state *out_state, char *buf, size_t len)
{
    char why[256];
    const char *what;
    int n_state = (int)strcspn(state, " +");
    rx_task_state ts = RX_TASK_LOST;

    if (state_is(state, "TIMEOUT")) {
        ts = RX_TASK_TIMEOUT;
        what = "time limit: Slurm ended the task at its time limit";
    } else if (state_is(state, "DEADLINE")) {
        ts = RX_TASK_TIMEOUT;
        what = "time limit: Slurm ended the task at its deadline";
    } else if (state_is(state, "OUT_OF_MEMORY")) {
        ts = RX_TASK_SIGNALED;
        what = "Slurm: the task ran out of memory";
    } else if (state_is(state, "NODE_FAIL")) {
        what = "Slurm: its node failed";
    } else if (state_is(state, "BOOT_FAIL")) {
        what = "Slurm: its node failed to boot";
    } else if (state_is(state, "PREEMPTED")) {
        what = "Slurm: the task was preempted";
    } else if (state_is(state, "CANCELLED")) {
        ts = RX_TASK_SIGNALED;
        what = "Slurm: the task was canceled in Slurm, not through rxjob";
    } else if (state_is(state, "FAILED")) {
        ts = RX_TASK_START_FAILED;
        what = "Slurm: its batch script failed before its supervisor wrote an exit record (is "
               "rxjobd at the same path on the node, and the spool directory shared?)";
    } else {
        what = "Slurm: the task ended badly";
    }
    if (reason != NULL && reason[0] != '\0' && strcmp(reason, "None") != 0)
        (void)snprintf(why, sizeof(why), "%.*s, reason %s", n_state, state, reason);
    else
        (void)snprintf(why, sizeof(why), "%.*s", n_state, state);
    if (record_text != NULL && record_text[0] != '\0')
        (void)snprintf(buf, len, "%s (%s); the task: %s", what, why, record_text);
    else
        (void)snprintf(buf, len, "%s (%s)", what, why);
    *out_state = ts;
}

/* ---------------------------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------------------------- */

static int
parse_u64_prefix(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;

    if (*s < '0' || *s > '9')
        return -1;
    while (*s >= '0' && *s <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
        s++;
    }
    *p = s;
    *out = v;
    return 0;
}

int
slurm_task_ranges(const char *tasks, uint64_t n_tasks, slurm_range_fn *fn, void *user)
{
    const char *p = tasks;

    if (p[0] == '[')
        p++;
    for (;;) {
        uint64_t first, last, step = 1;

        if (parse_u64_prefix(&p, &first) != 0)
            return -1;
        last = first;
        if (*p == '-') {
            p++;
            if (parse_u64_prefix(&p, &last) != 0 || last < first)
                return -1;
            if (*p == ':') {
                p++;
                if (parse_u64_prefix(&p, &step) != 0 || step == 0)
                    return -1;
            }
        }
        if (first < n_tasks) {
            if (last >= n_tasks)
                last = n_tasks - 1;
            if (step == 1) {
                fn(first, last, user);
            } else {
                for (uint64_t i = first; i <= last; i += step) {
                    fn(i, i, user);
                    if (last - i < step)
                        break;
                }
            }
        }
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '%' || *p == ']' || *p == '\0')
            return 0;
        return -1;
    }
}

/* Cut s at the next '|': returns the field, moves *s past the '|'; NULL if there is none. */
static char *
field(char **s)
{
    char *start = *s;
    char *bar = strchr(start, '|');

    if (bar == NULL)
        return NULL;
    *bar = '\0';
    *s = bar + 1;
    return start;
}

static int
parse_id(const char *s, int64_t *out)
{
    return rx__parse_i64(s, 1, INT64_MAX, out) == RX_OK ? 0 : -1;
}

int
slurm_parse_squeue_line(char *line, slurm_line *out)
{
    char *p = line;
    char *id, *tasks, *state, *reason;
    size_t n = strlen(line);

    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    id = field(&p);
    tasks = id ? field(&p) : NULL;
    state = tasks ? field(&p) : NULL;
    reason = state ? field(&p) : NULL;
    if (reason == NULL || parse_id(id, &out->array_job_id) != 0 || tasks[0] == '\0' ||
        state[0] == '\0')
        return -1;
    out->tasks = tasks;
    out->state = state;
    out->reason = reason;
    out->comment = p;
    return 0;
}

int
slurm_parse_sacct_line(char *line, slurm_acct_line *out)
{
    char *p = line;
    char *id, *state, *us, *sp;
    size_t n = strlen(line);

    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    id = field(&p);
    state = id ? field(&p) : NULL;
    if (state == NULL || state[0] == '\0')
        return -1;
    if (strchr(id, '.') != NULL)
        return -1; /* a step ("123_4.batch"): --allocations should have left them out */
    sp = strchr(state, ' ');
    if (sp != NULL)
        *sp = '\0';
    us = strchr(id, '_');
    out->tasks = "";
    if (us != NULL) {
        size_t k;

        *us = '\0';
        out->tasks = us + 1;
        if (out->tasks[0] == '[') {
            out->tasks++;
            k = strlen(out->tasks);
            if (k == 0 || out->tasks[k - 1] != ']')
                return -1;
            ((char *)out->tasks)[k - 1] = '\0';
        }
    }
    if (parse_id(id, &out->array_job_id) != 0)
        return -1;
    out->state = state;
    out->reason = p;
    return 0;
}

int64_t
slurm_time_minutes(int64_t timeout_ms, int64_t grace_ms)
{
    /* Room for the supervisor to stop the task, write its record and exit first. */
    const int64_t slack_ms = 15000;

    if (timeout_ms <= 0)
        return 0;
    return (timeout_ms + grace_ms + slack_ms + 59999) / 60000;
}

/* Append s single-quoted for sh: ' becomes '\''. */
static size_t
quote(char *dst, const char *s)
{
    size_t n = 0;

    if (dst)
        dst[n] = '\'';
    n++;
    for (; *s != '\0'; s++) {
        if (*s == '\'') {
            if (dst)
                memcpy(dst + n, "'\\''", 4);
            n += 4;
        } else {
            if (dst)
                dst[n] = *s;
            n++;
        }
    }
    if (dst)
        dst[n] = '\'';
    return n + 1;
}

char *
slurm_batch_script(const char *shim_exe, const char *job_dir, uint64_t n_tasks, int64_t timeout_ms,
                   int64_t grace_ms, int has_args, uint64_t output_bytes, uint64_t result_bytes)
{
    static const char head[] = "#!/bin/sh\n"
                               "# rxjob: one array task runs one task supervisor (docs/slurm.md)\n"
                               "exec ";
    static const char shim[] = " --shim ";
    char nums[192];
    size_t len, pos = 0;
    char *s;

    (void)snprintf(nums, sizeof(nums),
                   " - %" PRIu64 " %" PRId64 " %" PRId64 " %d %" PRIu64 " %" PRIu64 "\n", n_tasks,
                   timeout_ms, grace_ms, has_args ? 1 : 0, output_bytes, result_bytes);
    len = strlen(head) + quote(NULL, shim_exe) + strlen(shim) + quote(NULL, job_dir) + strlen(nums);
    s = rx__malloc(len + 1);
    if (s == NULL)
        return NULL;
    memcpy(s + pos, head, strlen(head));
    pos += strlen(head);
    pos += quote(s + pos, shim_exe);
    memcpy(s + pos, shim, strlen(shim));
    pos += strlen(shim);
    pos += quote(s + pos, job_dir);
    memcpy(s + pos, nums, strlen(nums));
    pos += strlen(nums);
    s[pos] = '\0';
    return s;
}
