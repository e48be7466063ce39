/*
 * bench_local - per-task overhead of the local-parallel context, beside floors measured in the
 * same run.
 *
 *     bench_local [--quick]
 *
 * Every row runs ONE rx_exec call on rx_local_parallel_context(2) and reports tasks per second
 * of wall time (CLOCK_MONOTONIC, from before rx_exec to after rx_results_free; checking the
 * results is not timed). Each row is measured RUNS times, alternating with its floor: the same
 * work done by hand with the fewest system calls the design needs, in the same process, so that
 * the machine's speed cancels out of the ratio.
 *
 * - Function tasks: a C function that sets its result to its index as text (or echoes its
 *   elem_args element). Floor: fork one process per chunk of tasks, at most 2 at once, each
 *   writing one record per task to a pipe that the parent reads into a result array.
 * - Command tasks: `true`, once per task. Floor: posix_spawnp("true") and waitpid(-1), 2 in
 *   flight.
 *
 * --quick runs fewer tasks per row (a smoke run for CI). Figures are printed, not judged: the exit
 * status is 0 even when a goal is NOT MET; it is 1 only if a run failed or returned wrong
 * results (the figure would mean nothing), and 2 on a usage error. See bench/README.md.
 */
#define _GNU_SOURCE /* sched_getaffinity and CPU_COUNT, for nproc */

#include "bench_common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <rxjob.h>
#include <sched.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define RUNS              5        /* measurements per row, each beside one of its floor */
#define WORKERS           2u       /* rx_local_parallel_context(WORKERS); floors use as many */
#define FUNC_GOAL_PER_S   200000.0 /* function tasks per second, rows without a fork per task */
#define CMD_GOAL_RATIO    0.80     /* command tasks: rxjob / floor */
#define AUTO_CHUNK_MAX    65536u   /* see floor_auto_chunk */
#define INDEX_TEXT_BYTES  24       /* "%zu" of any size_t, with its NUL */
#define FLOOR_READ_BYTES  (64 * 1024)
#define LABEL_WIDTH       40
#define SPOOL_PROBE_FILES 200 /* files created and removed to time the file system of the spool */

/* ---------------------------------------------------------------------------------------------
 * Time and statistics
 * ------------------------------------------------------------------------------------------- */

static double
monotonic_s(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0.0; /* cannot fail with CLOCK_MONOTONIC on Linux */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------------------------------------
 * The work: tiny C functions, and the text their results must hold
 * ------------------------------------------------------------------------------------------- */

/* Write i as decimal text to buf (INDEX_TEXT_BYTES); returns its length, or -1. */
static int
index_text(size_t i, char *buf)
{
    int n = snprintf(buf, INDEX_TEXT_BYTES, "%zu", i);

    return n < 0 || n >= INDEX_TEXT_BYTES ? -1 : n;
}

/* Task: result = its index as text. */
static int
task_index_text(rx_task *task)
{
    char text[INDEX_TEXT_BYTES];
    int n = index_text(rx_task_index(task), text);

    if (n < 0)
        return rx_task_fail(task, "snprintf failed");
    if (rx_task_set_result(task, text, (size_t)n) != RX_OK)
        return rx_task_fail(task, "rx_task_set_result failed");
    return 0;
}

/* Task: result = its argument (the index as text, given through elem_args). */
static int
task_echo_arg(rx_task *task)
{
    size_t len = 0;
    const void *arg = rx_task_arg(task, &len);

    if (rx_task_set_result(task, arg, len) != RX_OK)
        return rx_task_fail(task, "rx_task_set_result failed");
    return 0;
}

/* elem_args holding "0", "1", ..., "n-1": one text buffer, n views into it. */
typedef struct index_args {
    rx_buf *bufs;
    char *text;
    size_t n;
} index_args;

static int
index_args_build(index_args *a, size_t n)
{
    size_t off = 0;

    a->n = n;
    a->bufs = calloc(n, sizeof(*a->bufs));
    a->text = malloc(n * INDEX_TEXT_BYTES);
    if (a->bufs == NULL || a->text == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int len = index_text(i, a->text + off);

        if (len < 0)
            return -1;
        a->bufs[i] = (rx_buf){.data = a->text + off, .len = (size_t)len};
        off += (size_t)len + 1;
    }
    return 0;
}

static void
index_args_free(index_args *a)
{
    free(a->bufs);
    free(a->text);
    a->bufs = NULL;
    a->text = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * rxjob runs
 * ------------------------------------------------------------------------------------------- */

static void
report_exec_error(const char *what, rx_context *ctx, rx_err err, const rx_results *res)
{
    fprintf(stderr, "bench_local: %s: rx_exec: %s (%s)%s%s\n", what, rx_errname(err),
            rx_strerror(err), rx_context_errmsg(ctx)[0] ? ": " : "", rx_context_errmsg(ctx));
    for (size_t i = 0; res != NULL && i < rx_results_count(res); i++) {
        if (rx_results_state(res, i) != RX_TASK_OK) {
            fprintf(stderr, "bench_local: %s: first failed task %zu: %s: %s\n", what, i,
                    rx_task_state_name(rx_results_state(res, i)),
                    rx_results_error(res, i) ? rx_results_error(res, i) : "?");
            break;
        }
    }
}

/* Every slot holds its index as text. Returns 0 or -1 (after saying which slot is wrong). */
static int
check_function_results(const char *what, const rx_results *res, size_t n)
{
    if (rx_results_count(res) != n || rx_results_status(res) != RX_JOB_FINISHED) {
        fprintf(stderr, "bench_local: %s: %zu results (want %zu), status %s\n", what,
                rx_results_count(res), n, rx_job_status_name(rx_results_status(res)));
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char want[INDEX_TEXT_BYTES];
        size_t len = 0;
        const char *got = rx_results_value(res, i, &len);
        int want_len = index_text(i, want);

        if (got == NULL || want_len < 0 || len != (size_t)want_len || memcmp(got, want, len) != 0) {
            fprintf(stderr, "bench_local: %s: slot %zu holds '%.*s', want '%s'\n", what, i,
                    got ? (int)len : 6, got ? got : "(null)", want);
            return -1;
        }
    }
    return 0;
}

/* One rx_exec of n function tasks; *out_rate in tasks/s. Returns 0 or -1. */
static int
rxjob_run_function(rx_context *ctx, const char *what, size_t n, unsigned chunk,
                   const index_args *args, double *out_rate)
{
    rx_work work = rx_work_function(args ? task_echo_arg : task_index_text);
    rx_exec_opts opts = RX_EXEC_OPTS_INIT;
    rx_results *res = NULL;
    double t0, t1, t2, t3;
    rx_err err;

    if (args != NULL) {
        opts.elem_args = args->bufs;
        opts.n_elem_args = args->n;
    } else {
        opts.times_to_run = (int64_t)n;
    }
    opts.task_chunk_size = chunk;
    t0 = monotonic_s();
    err = rx_exec(ctx, &work, &opts, &res, NULL);
    t1 = monotonic_s();
    if (err != RX_OK) {
        report_exec_error(what, ctx, err, res);
        rx_results_free(res);
        return -1;
    }
    if (check_function_results(what, res, n) != 0) {
        rx_results_free(res);
        return -1;
    }
    t2 = monotonic_s();
    rx_results_free(res);
    t3 = monotonic_s();
    *out_rate = (double)n / ((t1 - t0) + (t3 - t2));
    return 0;
}

/* One rx_exec of n `true` commands; *out_rate in tasks/s. Returns 0 or -1. */
static int
rxjob_run_command(rx_context *ctx, size_t n, double *out_rate)
{
    static const char *const argv[] = {"true", NULL};
    rx_work work = rx_work_command(argv);
    rx_exec_opts opts = RX_EXEC_OPTS_INIT;
    rx_results *res = NULL;
    double t0, t1, t2, t3;
    rx_err err;

    opts.times_to_run = (int64_t)n;
    t0 = monotonic_s();
    err = rx_exec(ctx, &work, &opts, &res, NULL);
    t1 = monotonic_s();
    if (err != RX_OK) {
        report_exec_error("command tasks", ctx, err, res);
        rx_results_free(res);
        return -1;
    }
    if (rx_results_count(res) != n || rx_results_failed(res) != 0) {
        fprintf(stderr, "bench_local: command tasks: %zu results (want %zu), %zu failed\n",
                rx_results_count(res), n, rx_results_failed(res));
        rx_results_free(res);
        return -1;
    }
    t2 = monotonic_s();
    rx_results_free(res);
    t3 = monotonic_s();
    *out_rate = (double)n / ((t1 - t0) + (t3 - t2));
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Floor for function tasks: fork per chunk, one pipe record per task, 2 processes at once
 * ------------------------------------------------------------------------------------------- */

/* What a floor worker writes per task: this header, then len bytes of value. */
typedef struct floor_rec {
    uint64_t index;
    uint32_t len;
    uint32_t pad;
} floor_rec;

typedef struct floor_worker {
    int active;
    pid_t pid;
    int fd;
    size_t first; /* its chunk: tasks first .. first + count - 1 */
    size_t count;
    size_t got; /* records received */
    size_t len; /* bytes in buf */
    unsigned char buf[FLOOR_READ_BYTES];
} floor_worker;

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

/* The floor worker: one record per task, then exit. Never returns. */
static void
floor_child(int wfd, size_t first, size_t count, const index_args *args)
{
    for (size_t i = first; i < first + count; i++) {
        unsigned char rec[sizeof(floor_rec) + INDEX_TEXT_BYTES];
        floor_rec h = {.index = i};
        int len;

        if (args != NULL) {
            len = (int)args->bufs[i].len;
            memcpy(rec + sizeof(h), args->bufs[i].data, (size_t)len);
        } else {
            len = index_text(i, (char *)rec + sizeof(h));
            if (len < 0)
                _exit(2);
        }
        h.len = (uint32_t)len;
        memcpy(rec, &h, sizeof(h));
        if (write_all(wfd, rec, sizeof(h) + (size_t)len) != 0)
            _exit(1);
    }
    _exit(0);
}

static int
floor_start(floor_worker *w, size_t first, size_t count, const index_args *args)
{
    int fds[2];

    if (pipe(fds) != 0) {
        fprintf(stderr, "bench_local: floor: pipe: %s\n", strerror(errno));
        return -1;
    }
    (void)fflush(stdout); /* or the child's copy of the buffer could be written twice */
    w->pid = fork();
    if (w->pid < 0) {
        fprintf(stderr, "bench_local: floor: fork: %s\n", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (w->pid == 0) {
        close(fds[0]);
        floor_child(fds[1], first, count, args);
    }
    close(fds[1]);
    w->active = 1;
    w->fd = fds[0];
    w->first = first;
    w->count = count;
    w->got = 0;
    w->len = 0;
    return 0;
}

/* Take the complete records out of w->buf into values. Returns 0 or -1. */
static int
floor_parse(floor_worker *w, char **values)
{
    size_t pos = 0;

    while (w->len - pos >= sizeof(floor_rec)) {
        floor_rec h;
        char *v;

        memcpy(&h, w->buf + pos, sizeof(h));
        if (w->len - pos - sizeof(h) < h.len)
            break;
        if (h.index < w->first || h.index >= w->first + w->count || values[h.index] != NULL) {
            fprintf(stderr, "bench_local: floor: bad record for task %llu\n",
                    (unsigned long long)h.index);
            return -1;
        }
        v = malloc((size_t)h.len + 1);
        if (v == NULL) {
            fprintf(stderr, "bench_local: floor: out of memory\n");
            return -1;
        }
        memcpy(v, w->buf + pos + sizeof(h), h.len);
        v[h.len] = '\0';
        values[h.index] = v;
        w->got++;
        pos += sizeof(h) + h.len;
    }
    memmove(w->buf, w->buf + pos, w->len - pos);
    w->len -= pos;
    return 0;
}

/* Read what the worker's pipe holds; at its end, reap it. Returns 0 or -1. */
static int
floor_read(floor_worker *w, char **values)
{
    ssize_t n;
    int wstatus = 0;

    do {
        n = read(w->fd, w->buf + w->len, sizeof(w->buf) - w->len);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        fprintf(stderr, "bench_local: floor: read: %s\n", strerror(errno));
        return -1;
    }
    if (n > 0) {
        w->len += (size_t)n;
        return floor_parse(w, values);
    }
    close(w->fd);
    w->active = 0;
    if (waitpid(w->pid, &wstatus, 0) != w->pid) {
        fprintf(stderr, "bench_local: floor: waitpid: %s\n", strerror(errno));
        return -1;
    }
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0 || w->got != w->count || w->len != 0) {
        fprintf(stderr, "bench_local: floor: worker ended (status 0x%x) after %zu of %zu tasks\n",
                (unsigned)wstatus, w->got, w->count);
        return -1;
    }
    return 0;
}

/* n function tasks the floor's way, chunk tasks per process; *out_rate in tasks/s. */
static int
floor_run_function(size_t n, unsigned chunk, const index_args *args, double *out_rate)
{
    floor_worker *w = calloc(WORKERS, sizeof(*w));
    char **values = calloc(n, sizeof(*values));
    size_t next = 0;
    unsigned n_active = 0;
    int rc = -1;
    double t0, t1, t2, t3;

    if (w == NULL || values == NULL) {
        fprintf(stderr, "bench_local: floor: out of memory\n");
        goto done;
    }
    t0 = monotonic_s();
    while (next < n || n_active > 0) {
        struct pollfd pfds[WORKERS];
        unsigned owner[WORKERS];
        nfds_t n_fds = 0;

        for (unsigned k = 0; k < WORKERS && next < n; k++) {
            size_t count = n - next < chunk ? n - next : chunk;

            if (w[k].active)
                continue;
            if (floor_start(&w[k], next, count, args) != 0)
                goto done;
            next += count;
            n_active++;
        }
        for (unsigned k = 0; k < WORKERS; k++) {
            if (w[k].active) {
                pfds[n_fds] = (struct pollfd){.fd = w[k].fd, .events = POLLIN};
                owner[n_fds++] = k;
            }
        }
        if (poll(pfds, n_fds, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "bench_local: floor: poll: %s\n", strerror(errno));
            goto done;
        }
        for (nfds_t i = 0; i < n_fds; i++) {
            if (pfds[i].revents == 0)
                continue;
            if (floor_read(&w[owner[i]], values) != 0)
                goto done;
            if (!w[owner[i]].active)
                n_active--;
        }
    }
    t1 = monotonic_s();
    for (size_t i = 0; i < n; i++) {
        char want[INDEX_TEXT_BYTES];

        if (values[i] == NULL || index_text(i, want) < 0 || strcmp(values[i], want) != 0) {
            fprintf(stderr, "bench_local: floor: task %zu has a wrong value\n", i);
            goto done;
        }
    }
    t2 = monotonic_s();
    for (size_t i = 0; i < n; i++) {
        free(values[i]);
        values[i] = NULL;
    }
    t3 = monotonic_s();
    *out_rate = (double)n / ((t1 - t0) + (t3 - t2));
    rc = 0;
done:
    for (unsigned k = 0; w != NULL && k < WORKERS; k++) {
        int wstatus;

        if (!w[k].active)
            continue;
        close(w[k].fd);
        (void)kill(w[k].pid, SIGKILL);
        (void)waitpid(w[k].pid, &wstatus, 0);
    }
    for (size_t i = 0; values != NULL && i < n; i++)
        free(values[i]);
    free(values);
    free(w);
    return rc;
}

/*
 * The chunk the floor uses for the library's automatic one: n / (4 * workers), at least 1, at
 * most AUTO_CHUNK_MAX. This mirrors auto_chunk and CHUNK_AUTO_MAX in src/exec/pool.c (the public
 * API does not say which chunk was chosen): change them together. The floor's label prints it.
 */
static unsigned
floor_auto_chunk(size_t n)
{
    size_t per = n / ((size_t)WORKERS * 4);

    if (per < 1)
        per = 1;
    return per > AUTO_CHUNK_MAX ? AUTO_CHUNK_MAX : (unsigned)per;
}

/* ---------------------------------------------------------------------------------------------
 * Floor for command tasks: posix_spawnp + waitpid(-1), 2 in flight
 * ------------------------------------------------------------------------------------------- */

/* The slot of inflight holding pid (0: a free slot), or WORKERS if none does. */
static unsigned
inflight_slot(const pid_t *inflight, pid_t pid)
{
    for (unsigned k = 0; k < WORKERS; k++) {
        if (inflight[k] == pid)
            return k;
    }
    return WORKERS;
}

static int
floor_run_command(size_t n, double *out_rate)
{
    static char *const argv[] = {"true", NULL};
    pid_t inflight[WORKERS] = {0};
    size_t started = 0, done = 0;
    unsigned n_inflight = 0;
    double t0 = monotonic_s();

    while (done < n) {
        pid_t pid;
        int wstatus = 0;
        unsigned k;

        while (n_inflight < WORKERS && started < n) {
            int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);

            if (rc != 0) {
                fprintf(stderr, "bench_local: floor: posix_spawnp 'true': %s\n", strerror(rc));
                goto fail;
            }
            inflight[inflight_slot(inflight, 0)] = pid;
            n_inflight++;
            started++;
        }
        do {
            pid = waitpid(-1, &wstatus, 0);
        } while (pid < 0 && errno == EINTR);
        if (pid < 0) {
            fprintf(stderr, "bench_local: floor: waitpid: %s\n", strerror(errno));
            goto fail;
        }
        k = inflight_slot(inflight, pid);
        if (k == WORKERS) {
            /* Only rxjob could have left it: a task process it did not reap. */
            fprintf(stderr, "bench_local: floor: reaped pid %d, not ours (leaked by rxjob?)\n",
                    (int)pid);
            continue;
        }
        inflight[k] = 0;
        n_inflight--;
        done++;
        if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
            fprintf(stderr, "bench_local: floor: 'true' ended with status 0x%x\n",
                    (unsigned)wstatus);
            goto fail;
        }
    }
    *out_rate = (double)n / (monotonic_s() - t0);
    return 0;
fail:
    for (unsigned k = 0; k < WORKERS; k++) {
        int wstatus;

        if (inflight[k] != 0)
            (void)waitpid(inflight[k], &wstatus, 0);
    }
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * The spool's file system: rxjob creates one file there per function worker and per command
 * slot, so its file-creation cost is part of theirs
 * ------------------------------------------------------------------------------------------- */

/*
 * Time creating (open O_CREAT, close) and removing SPOOL_PROBE_FILES empty files in a fresh
 * directory under base, as rxjob's spool does. Returns 0 with both times in microseconds per
 * file, or -1.
 */
static int
spool_probe(const char *base, double *out_create_us, double *out_unlink_us)
{
    char dir[512], path[600];
    double t0, t1, t2;
    int saved_errno;
    int rc = -1;
    int made = 0;

    if (snprintf(dir, sizeof(dir), "%s/rxbench-XXXXXX", base) >= (int)sizeof(dir) ||
        mkdtemp(dir) == NULL)
        return -1;
    t0 = monotonic_s();
    for (; made < SPOOL_PROBE_FILES; made++) {
        int fd;

        (void)snprintf(path, sizeof(path), "%s/t%d.out", dir, made);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            goto done;
        close(fd);
    }
    t1 = monotonic_s();
    for (int i = 0; i < made; i++) {
        (void)snprintf(path, sizeof(path), "%s/t%d.out", dir, i);
        (void)unlink(path);
    }
    t2 = monotonic_s();
    made = 0;
    *out_create_us = (t1 - t0) * 1e6 / SPOOL_PROBE_FILES;
    *out_unlink_us = (t2 - t1) * 1e6 / SPOOL_PROBE_FILES;
    rc = 0;
done:
    saved_errno = errno; /* the open's, for the caller to print */
    for (int i = 0; i < made; i++) {
        (void)snprintf(path, sizeof(path), "%s/t%d.out", dir, i);
        (void)unlink(path);
    }
    (void)rmdir(dir);
    errno = saved_errno;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------------------------------- */

static void
print_rates(const char *label, size_t n, stats st)
{
    printf("%-*s %7zu tasks  median %8.0f/s  min %8.0f/s  max %8.0f/s", LABEL_WIDTH, label, n,
           st.median, st.min, st.max);
}

static void
print_header(int is_quick)
{
    char date[64] = "?";
    char cpu[256] = "?";
    struct utsname un;
    cpu_set_t set;
    time_t now = time(NULL);
    struct tm tm;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int nproc = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : -1;
    FILE *f = fopen("/proc/cpuinfo", "r");
    const char *spool = getenv("TMPDIR");
    double create_us = 0.0, unlink_us = 0.0;

    if (spool == NULL || spool[0] == '\0')
        spool = "/tmp"; /* where rxjob puts its spool, too */
    if (now != (time_t)-1 && localtime_r(&now, &tm) != NULL)
        (void)strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S %z", &tm);
    if (f != NULL) {
        char line[512];

        while (fgets(line, sizeof(line), f) != NULL) {
            char *colon = strchr(line, ':');

            if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
                colon += strspn(colon + 1, " \t") + 1;
                colon[strcspn(colon, "\n")] = '\0';
                (void)snprintf(cpu, sizeof(cpu), "%s", colon);
                break;
            }
        }
        (void)fclose(f);
    }
    if (uname(&un) != 0) {
        (void)snprintf(un.sysname, sizeof(un.sysname), "?");
        (void)snprintf(un.release, sizeof(un.release), "?");
        (void)snprintf(un.machine, sizeof(un.machine), "?");
    }
    printf("bench_local: per-task overhead of rx_local_parallel_context(%u), rxjob %s\n", WORKERS,
           rx_version());
    printf("date      %s\n", date);
    printf("machine   nproc %d (%ld online), %s %s %s, %s\n", nproc, online, un.sysname, un.release,
           un.machine, cpu);
    if (spool_probe(spool, &create_us, &unlink_us) == 0) {
        printf("spool     %s (%s): empty file create %.1f us, unlink %.1f us (one per command "
               "task and per function worker)\n",
               spool, fs_name(spool), create_us, unlink_us);
    } else {
        int probe_errno = errno; /* before statfs can change it */

        printf("spool     %s (%s): cannot create files there: %s\n", spool, fs_name(spool),
               strerror(probe_errno));
    }
    printf("mode      %s: %d runs per row, alternating rxjob and its floor; rates in tasks/s "
           "of wall time\n\n",
           is_quick ? "quick" : "full", RUNS);
}

typedef struct func_row {
    const char *label;
    size_t n_tasks;
    unsigned chunk; /* 0 = the library's choice */
    int use_args;   /* elem_args instead of times_to_run */
    int has_goal;   /* judged against FUNC_GOAL_PER_S (not with a fork per task) */
} func_row;

static const func_row full_rows[] = {
    {.label = "function tasks (auto chunk)", .n_tasks = 100000, .chunk = 0, .has_goal = 1},
    {.label = "function tasks (auto chunk, elem_args)",
     .n_tasks = 100000,
     .use_args = 1,
     .has_goal = 1},
    {.label = "function tasks (chunk 1000)", .n_tasks = 100000, .chunk = 1000, .has_goal = 1},
    {.label = "function tasks (chunk 10000)", .n_tasks = 100000, .chunk = 10000, .has_goal = 1},
    {.label = "function tasks (chunk 1: fork per task)", .n_tasks = 2000, .chunk = 1},
};

static const func_row quick_rows[] = {
    {.label = "function tasks (auto chunk)", .n_tasks = 20000, .chunk = 0, .has_goal = 1},
    {.label = "function tasks (auto chunk, elem_args)",
     .n_tasks = 20000,
     .use_args = 1,
     .has_goal = 1},
    {.label = "function tasks (chunk 1000)", .n_tasks = 20000, .chunk = 1000, .has_goal = 1},
    {.label = "function tasks (chunk 10000)", .n_tasks = 20000, .chunk = 10000, .has_goal = 1},
    {.label = "function tasks (chunk 1: fork per task)", .n_tasks = 200, .chunk = 1},
};

#define FULL_COMMAND_TASKS  2000
#define QUICK_COMMAND_TASKS 200

static int
bench_function_row(rx_context *ctx, const func_row *row)
{
    unsigned floor_chunk = row->chunk ? row->chunk : floor_auto_chunk(row->n_tasks);
    index_args args = {0};
    double rx_rate[RUNS], floor_rate[RUNS];
    char label[128];
    stats rx_st, floor_st;
    int rc = -1;

    if (row->use_args && index_args_build(&args, row->n_tasks) != 0) {
        fprintf(stderr, "bench_local: out of memory\n");
        goto done;
    }
    for (int r = 0; r < RUNS; r++) {
        if (rxjob_run_function(ctx, row->label, row->n_tasks, row->chunk,
                               row->use_args ? &args : NULL, &rx_rate[r]) != 0 ||
            floor_run_function(row->n_tasks, floor_chunk, row->use_args ? &args : NULL,
                               &floor_rate[r]) != 0)
            goto done;
    }
    rx_st = stats_of(rx_rate, RUNS);
    floor_st = stats_of(floor_rate, RUNS);
    print_rates(row->label, row->n_tasks, rx_st);
    if (row->has_goal)
        printf("  goal >= %.0f/s  %s", FUNC_GOAL_PER_S,
               rx_st.median >= FUNC_GOAL_PER_S ? "MET" : "NOT MET");
    printf("\n");
    (void)snprintf(label, sizeof(label), "  floor: fork+pipe, chunk %u", floor_chunk);
    print_rates(label, row->n_tasks, floor_st);
    printf("  rxjob/floor %.0f %%, +%.2f us/task\n", 100.0 * rx_st.median / floor_st.median,
           1e6 / rx_st.median - 1e6 / floor_st.median);
    rc = 0;
done:
    index_args_free(&args);
    return rc;
}

static int
bench_command_row(rx_context *ctx, size_t n)
{
    double rx_rate[RUNS], floor_rate[RUNS], ratio[RUNS];
    stats rx_st, floor_st, ratio_st;

    for (int r = 0; r < RUNS; r++) {
        if (rxjob_run_command(ctx, n, &rx_rate[r]) != 0 ||
            floor_run_command(n, &floor_rate[r]) != 0)
            return -1;
        ratio[r] = rx_rate[r] / floor_rate[r];
    }
    rx_st = stats_of(rx_rate, RUNS);
    floor_st = stats_of(floor_rate, RUNS);
    ratio_st = stats_of(ratio, RUNS);
    print_rates("command tasks (true)", n, rx_st);
    printf("\n");
    print_rates("  floor: posix_spawnp + waitpid(-1)", n, floor_st);
    printf("  +%.1f us/task\n", 1e6 / rx_st.median - 1e6 / floor_st.median);
    printf(
        "%-*s               median %7.0f %%   min %7.0f %%   max %7.0f %%   goal >= %.0f %%  %s\n",
        LABEL_WIDTH, "  rxjob/floor, per run pair", 100.0 * ratio_st.median, 100.0 * ratio_st.min,
        100.0 * ratio_st.max, 100.0 * CMD_GOAL_RATIO,
        ratio_st.median >= CMD_GOAL_RATIO ? "MET" : "NOT MET");
    return 0;
}

static void
usage(FILE *out)
{
    fprintf(out, "usage: bench_local [--quick]\n"
                 "  per-task overhead of rx_local_parallel_context(2), beside floors measured\n"
                 "  in the same run; --quick runs fewer tasks (a smoke run).\n");
}

int
main(int argc, char **argv)
{
    const func_row *rows = full_rows;
    size_t n_rows = sizeof(full_rows) / sizeof(full_rows[0]);
    size_t n_commands = FULL_COMMAND_TASKS;
    rx_context *ctx = NULL;
    int is_quick = 0;
    rx_err err;
    int status = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            is_quick = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (is_quick) {
        rows = quick_rows;
        n_rows = sizeof(quick_rows) / sizeof(quick_rows[0]);
        n_commands = QUICK_COMMAND_TASKS;
    }

    err = rx_local_parallel_context(WORKERS, &ctx);
    if (err != RX_OK) {
        fprintf(stderr, "bench_local: rx_local_parallel_context: %s\n", rx_strerror(err));
        return 1;
    }
    print_header(is_quick);
    for (size_t i = 0; i < n_rows; i++) {
        if (bench_function_row(ctx, &rows[i]) != 0)
            goto done;
        (void)fflush(stdout);
    }
    printf("\n");
    if (bench_command_row(ctx, n_commands) != 0)
        goto done;
    status = 0;
done:
    if (fflush(stdout) != 0) {
        fprintf(stderr, "bench_local: writing stdout: %s\n", strerror(errno));
        status = 1;
    }
    rx_context_free(ctx);
    return status;
}
