/*
 * bench_server - rxjobd's latency and throughput over its Unix socket, beside floors measured in
 * the same run.
 *
 *     bench_server [--quick] [--rxjobd PATH]
 *
 * The benchmark starts its own daemons (PATH, default ../rxjobd next to this program), each with
 * a socket and a state directory in a fresh directory under $TMPDIR (default /tmp), in the
 * foreground, and waits until they answer: one with --hold (jobs are stored, no task starts) for
 * rows 1, 2 and 4, one with --slots 2 for rows 3 and 5. At the end it stops them (SIGTERM, by
 * pid) and removes the directory. Rows, each measured several times, alternating with its
 * floors (work done by hand, with the fewest system calls the design needs):
 *
 * 1. Submit latency: rx_exec of `true` on a non-waiting server context, one client; p50, p99.
 *    Floors: a 1-byte AF_UNIX round trip to an echo thread of this program (p50), and a 4 KiB
 *    pwrite + fdatasync on the state directory's file system (p50).
 *    Goal: submit p50 <= 2 x (fdatasync + round trip), judged per run pair.
 * 2. Submissions per second, 16 client threads with a context each. Goal >= 20 000/s. Printed
 *    beside the same 16 clients querying a job's status (the daemon's HTTP ceiling without the
 *    store) and 16 clients doing round trips to echo threads (the socket's ceiling).
 * 3. Submit -> task started, on an idle daemon: the task is `date +%s%N`, whose output is the
 *    CLOCK_REALTIME at which it ran; one job at a time (each waited for and collected before the
 *    next). Floor: posix_spawnp of the same command, from before the call to its stamp.
 *    Goal: p50 <= 2 x the floor's, judged per run pair.
 * 4. Status query latency: rx_get_job_status on an existing job; p50. Goal <= 5 x round trip.
 * 5. 1 000 `true` tasks in one job (slots 2), tasks/s of wall time from before rx_exec to the end
 *    of rx_wait_for_job. Floor: posix_spawnp("true") and waitpid(-1), 2 in flight.
 *
 * Rows 1, 2 and 4 also print their cost per request, which the machine's load disturbs less than
 * latency: the daemon's CPU time (all threads, /proc/PID/task/TID/schedstat), the client thread's
 * CPU time (rows 1 and 4) and the daemon's context switches.
 *
 * --floors N runs only the floors, once, and prints them on one line for bench/compare:
 * "floor_rt_p50_ms=X floor_fdatasync_p50_ms=Y floor_spawn_per_s=Z" (500 round trips, 200
 * fdatasyncs on $TMPDIR's file system, N `true` spawns 2 at once); no daemon is started.
 *
 * --quick runs smaller counts (a smoke run for CI). Figures are printed, not judged: the exit
 * status is 0 even when a goal is NOT MET; it is 1 if something failed (a daemon did not start
 * or stop, a request failed, a task did not run as it should), and 2 on a usage error. See
 * bench/README.md.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT, prctl, nftw, pipe2 */

#include "bench_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <rxjob.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define RUNS              5       /* measurements of rows 1, 2 and 4, each beside its floors */
#define CLIENTS           16      /* row 2: client threads, each with its own context */
#define RUN_SLOTS         "2"     /* --slots of the daemon that runs tasks (rows 3 and 5) */
#define SUBMIT_GOAL_RATIO 2.0     /* row 1: submit p50 / (fdatasync p50 + round trip p50) */
#define RATE_GOAL_PER_S   20000.0 /* row 2: submissions per second */
#define START_GOAL_RATIO  2.0     /* row 3: submit->start p50 / posix_spawn->start p50 */
#define STATUS_GOAL_RATIO 5.0     /* row 4: status p50 / round trip p50 */
#define WARMUP_OPS        10      /* untimed requests before a timed series (connect, caches) */
#define FSYNC_BLOCK_BYTES 4096    /* row 1 floor: bytes written before each fdatasync */
#define FSYNC_FILE_BLOCKS 256     /* the floor's file is preallocated: 1 MiB, overwritten */
#define DAEMON_START_MS   10000   /* longest wait for a daemon to answer */
#define DAEMON_STOP_MS    10000   /* longest wait for a daemon to exit after SIGTERM */
#define DAEMON_POLL_MS    5       /* between two looks while starting or stopping one */
#define JOB_WAIT_S        120.0   /* longest wait for one job to end */
#define STAMP_OUTPUT_MAX  4096    /* bytes of a stamp command's output we read at most */
#define LOG_TAIL_BYTES    2048    /* of a daemon's log, printed when something failed */
#define LABEL_WIDTH       46

/* ---------------------------------------------------------------------------------------------
 * Counts
 * ------------------------------------------------------------------------------------------- */

typedef struct counts {
    size_t submits;    /* row 1: submissions per run */
    size_t syncs;      /* row 1 floor: fdatasyncs per run */
    size_t per_client; /* row 2: submissions (and floor operations) per client per run */
    size_t stamps;     /* row 3: jobs per run */
    size_t statuses;   /* row 4: status queries per run (and round trips of its floor) */
    size_t tasks;      /* row 5: tasks of the job */
    int long_runs;     /* runs of rows 3 and 5 */
} counts;

static const counts full_counts = {
    .submits = 2000,
    .syncs = 500,
    .per_client = 500,
    .stamps = 200,
    .statuses = 5000,
    .tasks = 1000,
    .long_runs = 5,
};

static const counts quick_counts = {
    .submits = 200,
    .syncs = 50,
    .per_client = 30,
    .stamps = 15,
    .statuses = 500,
    .tasks = 50,
    .long_runs = 3,
};

/* ---------------------------------------------------------------------------------------------
 * Time and statistics
 * ------------------------------------------------------------------------------------------- */

static int64_t
clock_ns(clockid_t clock)
{
    struct timespec ts;

    if (clock_gettime(clock, &ts) != 0)
        return 0; /* cannot fail with these clocks on Linux */
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t
monotonic_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

static double
ms_since(int64_t t0_ns)
{
    return (double)(monotonic_ns() - t0_ns) / 1e6;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The p-quantile of n samples by nearest rank (p50: the ceil(n/2)-th smallest). Sorts v. */
static double
percentile(double *v, size_t n, double p)
{
    size_t rank;

    qsort(v, n, sizeof(*v), bench_compare_double);
    rank = (size_t)ceil(p * (double)n);
    if (rank < 1)
        rank = 1;
    return v[rank - 1];
}

/* ---------------------------------------------------------------------------------------------
 * The benchmark's own directory and daemons
 * ------------------------------------------------------------------------------------------- */

typedef struct daemon_proc {
    const char *name; /* "hold" or "run" */
    pid_t pid;        /* 0 when not running (never started, or reaped) */
    char url[PATH_MAX + 8];
    char socket[PATH_MAX];
    char state_dir[PATH_MAX];
    char log[PATH_MAX];
} daemon_proc;

typedef struct bench {
    const counts *cnt;
    char dir[PATH_MAX]; /* $TMPDIR/rxbench-server-XXXXXX: everything below is in it */
    char rxjobd[PATH_MAX];
    daemon_proc hold; /* --hold: rows 1, 2, 4 */
    daemon_proc run;  /* --slots 2: rows 3, 5 */
    char echo_path[PATH_MAX];
    int echo_fd;       /* the floors' echo server: listening socket */
    int sync_fd;       /* the fdatasync floor's file */
    int64_t status_id; /* a QUEUED job of the hold daemon, for row 4 and row 2's ceiling */
} bench;

/* buf = dir/name. Returns 0, or -1 (said on stderr) when it does not fit. */
static int
path_join(char *buf, size_t size, const char *dir, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);

    if (n < 0 || (size_t)n >= size) {
        fprintf(stderr, "bench_server: path '%s/%s' is too long\n", dir, name);
        return -1;
    }
    return 0;
}

/*
 * Start rxjobd in the foreground as our child, its log in the benchmark's directory. It dies with
 * us (PR_SET_PDEATHSIG), so an interrupted benchmark leaves no daemon behind. Returns 0 or -1.
 */
static int
daemon_spawn(const bench *b, daemon_proc *d, int hold)
{
    char *argv[10];
    int argc = 0;
    pid_t parent = getpid();
    pid_t pid;
    char sock_name[64], state_name[64], log_name[64];

    (void)snprintf(sock_name, sizeof(sock_name), "%s.sock", d->name);
    (void)snprintf(state_name, sizeof(state_name), "%s-state", d->name);
    (void)snprintf(log_name, sizeof(log_name), "%s.log", d->name);
    if (path_join(d->socket, sizeof(d->socket), b->dir, sock_name) != 0 ||
        path_join(d->state_dir, sizeof(d->state_dir), b->dir, state_name) != 0 ||
        path_join(d->log, sizeof(d->log), b->dir, log_name) != 0)
        return -1;
    (void)snprintf(d->url, sizeof(d->url), "unix:%s", d->socket);
    if (strlen(d->socket) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        fprintf(stderr,
                "bench_server: socket path '%s' is too long; set TMPDIR to a shorter "
                "directory\n",
                d->socket);
        return -1;
    }

    argv[argc++] = (char *)b->rxjobd;
    argv[argc++] = "--foreground";
    argv[argc++] = "--socket";
    argv[argc++] = d->socket;
    argv[argc++] = "--state-dir";
    argv[argc++] = d->state_dir;
    if (hold) {
        argv[argc++] = "--hold";
    } else {
        argv[argc++] = "--slots";
        argv[argc++] = RUN_SLOTS;
    }
    argv[argc] = NULL;

    (void)fflush(NULL);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "bench_server: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls from here to exec. */
        int fd;

        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
            _exit(127);
        fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
            _exit(127);
        if (fd > STDERR_FILENO)
            close(fd);
        fd = open("/dev/null", O_RDONLY);
        if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
            _exit(127);
        if (fd > STDERR_FILENO)
            close(fd);
        execv(argv[0], argv);
        {
            static const char msg[] = "bench_server: exec rxjobd failed\n";

            (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        }
        _exit(127);
    }
    d->pid = pid;
    return 0;
}

static void
print_log_tail(const daemon_proc *d)
{
    char buf[LOG_TAIL_BYTES + 1];
    FILE *f = fopen(d->log, "r");
    size_t got;
    long size;

    if (f == NULL)
        return;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > LOG_TAIL_BYTES)
        (void)fseek(f, size - LOG_TAIL_BYTES, SEEK_SET);
    else
        (void)fseek(f, 0, SEEK_SET);
    got = fread(buf, 1, LOG_TAIL_BYTES, f);
    buf[got] = '\0';
    (void)fclose(f);
    if (got > 0)
        fprintf(stderr, "bench_server: end of the %s daemon's log (%s):\n%s", d->name, d->log, buf);
}

/* Describe a reaped daemon's end on stderr. */
static void
report_daemon_exit(const daemon_proc *d, int wstatus)
{
    if (WIFEXITED(wstatus))
        fprintf(stderr, "bench_server: the %s daemon exited with status %d\n", d->name,
                WEXITSTATUS(wstatus));
    else if (WIFSIGNALED(wstatus))
        fprintf(stderr, "bench_server: the %s daemon was killed by signal %d\n", d->name,
                WTERMSIG(wstatus));
}

/* Wait until the daemon answers on its socket. Returns 0, or -1 (it exited, or never answered). */
static int
daemon_wait_ready(daemon_proc *d)
{
    int64_t t0 = monotonic_ns();

    for (;;) {
        rx_daemon_info *info = NULL;
        int wstatus;
        rx_err err = rx_daemon_get_info(d->url, &info);
        int running = err == RX_OK && info->running;

        rx_daemon_info_free(info);
        if (running)
            return 0;
        if (waitpid(d->pid, &wstatus, WNOHANG) == d->pid) {
            d->pid = 0;
            fprintf(stderr, "bench_server: the %s daemon did not start\n", d->name);
            report_daemon_exit(d, wstatus);
            return -1;
        }
        if (ms_since(t0) > DAEMON_START_MS) {
            fprintf(stderr,
                    "bench_server: the %s daemon (pid %ld) does not answer on %s after "
                    "%d ms\n",
                    d->name, (long)d->pid, d->socket, DAEMON_START_MS);
            return -1;
        }
        sleep_ms(DAEMON_POLL_MS);
    }
}

/* SIGTERM, then wait for it to exit (SIGKILL after DAEMON_STOP_MS). Returns 0 if it exited 0. */
static int
daemon_stop(daemon_proc *d)
{
    int64_t t0 = monotonic_ns();
    int wstatus = 0;

    if (d->pid <= 0)
        return 0;
    if (kill(d->pid, SIGTERM) != 0) {
        fprintf(stderr, "bench_server: kill %ld: %s\n", (long)d->pid, strerror(errno));
        return -1;
    }
    for (;;) {
        pid_t got = waitpid(d->pid, &wstatus, WNOHANG);

        if (got == d->pid)
            break;
        if (got < 0 && errno != EINTR) {
            fprintf(stderr, "bench_server: waitpid %ld: %s\n", (long)d->pid, strerror(errno));
            d->pid = 0;
            return -1;
        }
        if (ms_since(t0) > DAEMON_STOP_MS) {
            fprintf(stderr, "bench_server: the %s daemon ignored SIGTERM for %d ms: killing it\n",
                    d->name, DAEMON_STOP_MS);
            (void)kill(d->pid, SIGKILL);
            (void)waitpid(d->pid, &wstatus, 0);
            d->pid = 0;
            return -1;
        }
        sleep_ms(DAEMON_POLL_MS);
    }
    d->pid = 0;
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
        report_daemon_exit(d, wstatus);
        return -1;
    }
    return 0;
}

static int
remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "bench_server: remove '%s': %s\n", path, strerror(errno));
    return 0; /* go on: remove what can be removed */
}

/* ---------------------------------------------------------------------------------------------
 * Floors: an AF_UNIX echo server, fdatasync, posix_spawn
 * ------------------------------------------------------------------------------------------- */

static int
echo_listen(bench *b)
{
    struct sockaddr_un addr;

    if (path_join(b->echo_path, sizeof(b->echo_path), b->dir, "echo.sock") != 0)
        return -1;
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    if (strlen(b->echo_path) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "bench_server: socket path '%s' is too long\n", b->echo_path);
        return -1;
    }
    memcpy(addr.sun_path, b->echo_path, strlen(b->echo_path) + 1);
    b->echo_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (b->echo_fd < 0 || bind(b->echo_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        listen(b->echo_fd, CLIENTS * 2) != 0) {
        fprintf(stderr, "bench_server: echo socket '%s': %s\n", b->echo_path, strerror(errno));
        return -1;
    }
    return 0;
}

static int
echo_connect(const bench *b)
{
    struct sockaddr_un addr;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, b->echo_path, strlen(b->echo_path) + 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        fprintf(stderr, "bench_server: connect '%s': %s\n", b->echo_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* One echo server thread: accept one connection, send back every byte until end-of-file. */
static void *
echo_main(void *arg)
{
    const bench *b = arg;
    int fd = accept4(b->echo_fd, NULL, NULL, SOCK_CLOEXEC);
    char byte;

    if (fd < 0)
        return NULL;
    for (;;) {
        ssize_t got = read(fd, &byte, 1);

        if (got < 0 && errno == EINTR)
            continue;
        if (got != 1 || write(fd, &byte, 1) != 1)
            break;
    }
    close(fd);
    return NULL;
}

/* One 1-byte round trip on fd. Returns 0 or -1. */
static int
ping(int fd)
{
    char byte = 'p';

    if (write(fd, &byte, 1) != 1 || read(fd, &byte, 1) != 1) {
        fprintf(stderr, "bench_server: echo round trip: %s\n",
                errno ? strerror(errno) : "end of file");
        return -1;
    }
    return 0;
}

/*
 * Floor: n 1-byte round trips to an echo thread; their p50 in ms. Returns 0 or -1.
 *
 * Both threads run on the CPU this one is on, so that every wakeup is a local context switch:
 * the cheapest round trip the kernel offers, and a stable one. Unpinned, the floor flips from
 * run to run between that and a wakeup of an idle CPU, which on a VM (a halted vCPU woken by an
 * interrupt through the host) costs ten times as much.
 */
static int
floor_round_trip(bench *b, size_t n, double *lat_ms, double *out_p50)
{
    pthread_attr_t attr;
    pthread_t echo;
    cpu_set_t old_set, one_cpu;
    int cpu = sched_getcpu();
    int is_pinned = 0;
    int fd = -1;
    int rc = -1;

    if (pthread_attr_init(&attr) != 0) {
        fprintf(stderr, "bench_server: pthread_attr_init failed\n");
        return -1;
    }
    CPU_ZERO(&one_cpu);
    if (cpu >= 0 && pthread_getaffinity_np(pthread_self(), sizeof(old_set), &old_set) == 0) {
        CPU_SET(cpu, &one_cpu);
        is_pinned = pthread_attr_setaffinity_np(&attr, sizeof(one_cpu), &one_cpu) == 0 &&
                    pthread_setaffinity_np(pthread_self(), sizeof(one_cpu), &one_cpu) == 0;
    }
    if (pthread_create(&echo, is_pinned ? &attr : NULL, echo_main, b) != 0) {
        fprintf(stderr, "bench_server: pthread_create failed\n");
        goto out_attr;
    }
    fd = echo_connect(b);
    if (fd < 0) {
        (void)pthread_cancel(echo); /* blocked in accept, a cancellation point */
        (void)pthread_join(echo, NULL);
        goto out_attr;
    }
    for (int i = 0; i < WARMUP_OPS; i++) {
        if (ping(fd) != 0)
            goto done;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t t0 = monotonic_ns();

        if (ping(fd) != 0)
            goto done;
        lat_ms[i] = ms_since(t0);
    }
    *out_p50 = percentile(lat_ms, n, 0.50);
    rc = 0;
done:
    close(fd);
    (void)pthread_join(echo, NULL);
out_attr:
    if (is_pinned)
        (void)pthread_setaffinity_np(pthread_self(), sizeof(old_set), &old_set);
    (void)pthread_attr_destroy(&attr);
    return rc;
}

/* The fdatasync floor's file: FSYNC_FILE_BLOCKS blocks, written and synced once, so the timed
 * writes overwrite allocated blocks and fdatasync has no metadata to write: the cheapest
 * durable 4 KiB write the file system offers. Returns 0 or -1. */
static int
sync_file_open(bench *b)
{
    char path[PATH_MAX];
    char block[FSYNC_BLOCK_BYTES];

    if (path_join(path, sizeof(path), b->dir, "fdatasync.dat") != 0)
        return -1;
    b->sync_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (b->sync_fd < 0) {
        fprintf(stderr, "bench_server: open '%s': %s\n", path, strerror(errno));
        return -1;
    }
    memset(block, 'x', sizeof(block));
    for (int i = 0; i < FSYNC_FILE_BLOCKS; i++) {
        if (write(b->sync_fd, block, sizeof(block)) != (ssize_t)sizeof(block)) {
            fprintf(stderr, "bench_server: write '%s': %s\n", path, strerror(errno));
            return -1;
        }
    }
    if (fsync(b->sync_fd) != 0) {
        fprintf(stderr, "bench_server: fsync '%s': %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Floor: n times a 4 KiB pwrite and fdatasync; their p50 in ms. Returns 0 or -1. */
static int
floor_fdatasync(bench *b, size_t n, double *lat_ms, double *out_p50)
{
    char block[FSYNC_BLOCK_BYTES];

    for (size_t i = 0; i < n; i++) {
        off_t off = (off_t)(i % FSYNC_FILE_BLOCKS) * FSYNC_BLOCK_BYTES;
        int64_t t0;

        memset(block, (int)('a' + i % 26), sizeof(block));
        t0 = monotonic_ns();
        if (pwrite(b->sync_fd, block, sizeof(block), off) != (ssize_t)sizeof(block) ||
            fdatasync(b->sync_fd) != 0) {
            fprintf(stderr, "bench_server: pwrite + fdatasync: %s\n", strerror(errno));
            return -1;
        }
        lat_ms[i] = ms_since(t0);
    }
    *out_p50 = percentile(lat_ms, n, 0.50);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------------------------- */

static const char *const true_argv[] = {"true", NULL};
static const char *const stamp_argv[] = {"date", "+%s%N", NULL};

static void
report_error(const char *what, rx_context *ctx, rx_err err)
{
    const char *msg = ctx != NULL ? rx_context_errmsg(ctx) : "";

    fprintf(stderr, "bench_server: %s: %s (%s)%s%s\n", what, rx_errname(err), rx_strerror(err),
            msg[0] ? ": " : "", msg);
}

static int
server_context(const daemon_proc *d, rx_context **out_ctx)
{
    rx_err err = rx_server_context(d->url, out_ctx);

    if (err != RX_OK) {
        report_error("rx_server_context", NULL, err);
        return -1;
    }
    return 0;
}

/* Submit one job of one `true` task; its id in *out_id if not NULL. Returns 0 or -1. */
static int
submit_true(rx_context *ctx, int64_t *out_id)
{
    rx_work work = rx_work_command(true_argv);
    rx_job *job = NULL;
    rx_err err = rx_exec(ctx, &work, NULL, NULL, &job);

    if (err != RX_OK) {
        report_error("rx_exec", ctx, err);
        return -1;
    }
    if (out_id != NULL)
        *out_id = rx_job_id(job);
    rx_job_free(job);
    return 0;
}

/* One status query: the job must read QUEUED (the hold daemon starts nothing). */
static int
status_queued(rx_job *job)
{
    rx_job_status st = rx_get_job_status(job);

    if (st != RX_JOB_QUEUED) {
        fprintf(stderr, "bench_server: job %" PRId64 " reads %s, want QUEUED\n", rx_job_id(job),
                rx_job_status_name(st));
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Cost per request: CPU time and context switches, which the machine's load disturbs far less
 * than wall-clock latency
 * ------------------------------------------------------------------------------------------- */

/* What a process (all its threads now alive) has used so far. */
typedef struct proc_use {
    int64_t cpu_ns; /* on-CPU time: /proc/PID/task/TID/schedstat, first field */
    int64_t ctxsw;  /* voluntary + involuntary context switches */
} proc_use;

static void
proc_use_read(pid_t pid, proc_use *out)
{
    char path[PATH_MAX], line[256];
    struct dirent *ent;
    DIR *d;

    memset(out, 0, sizeof(*out));
    (void)snprintf(path, sizeof(path), "/proc/%ld/task", (long)pid);
    d = opendir(path);
    if (d == NULL)
        return;
    while ((ent = readdir(d)) != NULL) {
        long long v;
        FILE *f;

        if (ent->d_name[0] == '.')
            continue;
        (void)snprintf(path, sizeof(path), "/proc/%ld/task/%s/schedstat", (long)pid, ent->d_name);
        f = fopen(path, "r");
        if (f != NULL) {
            if (fscanf(f, "%lld", &v) == 1)
                out->cpu_ns += v;
            (void)fclose(f);
        }
        (void)snprintf(path, sizeof(path), "/proc/%ld/task/%s/status", (long)pid, ent->d_name);
        f = fopen(path, "r");
        if (f == NULL)
            continue;
        while (fgets(line, sizeof(line), f) != NULL) {
            if (sscanf(line, "voluntary_ctxt_switches: %lld", &v) == 1 ||
                sscanf(line, "nonvoluntary_ctxt_switches: %lld", &v) == 1)
                out->ctxsw += v;
        }
        (void)fclose(f);
    }
    (void)closedir(d);
}

/* A process's CPU time so far, its exited threads' included (/proc/PID/stat utime + stime), in
 * clock ticks' resolution (10 ms): for series of seconds. */
static double
proc_cpu_us(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long long utime = 0, stime = 0;
    const char *p;
    FILE *f;
    size_t n;

    (void)snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    (void)fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* field 2, "(comm)", may hold spaces */
    if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                            &stime) != 2)
        return 0;
    return (double)(utime + stime) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

/* The daemon's and this thread's use across a series of requests. */
typedef struct cost {
    pid_t daemon;
    proc_use d0;
    int64_t client0_ns;
    double daemon_us, client_us, daemon_ctxsw; /* summed over series, per request */
    size_t n;
} cost;

static void
cost_begin(cost *c)
{
    proc_use_read(c->daemon, &c->d0);
    c->client0_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static void
cost_end(cost *c, size_t n)
{
    int64_t client_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c->client0_ns;
    proc_use d1;

    proc_use_read(c->daemon, &d1);
    c->daemon_us += (double)(d1.cpu_ns - c->d0.cpu_ns) / 1e3;
    c->client_us += (double)client_ns / 1e3;
    c->daemon_ctxsw += (double)(d1.ctxsw - c->d0.ctxsw);
    c->n += n;
}

static void
print_cost(const cost *c)
{
    double n = c->n > 0 ? (double)c->n : 1.0;

    printf("  cost per request: daemon CPU %.1f us, client CPU %.1f us (this thread), daemon "
           "context switches %.2f\n",
           c->daemon_us / n, c->client_us / n, c->daemon_ctxsw / n);
}

/* ---------------------------------------------------------------------------------------------
 * Row 1: submit latency, one client
 * ------------------------------------------------------------------------------------------- */

static int
rxjob_submit_latency(rx_context *ctx, size_t n, double *lat_ms, double *out_p50, double *out_p99)
{
    for (size_t i = 0; i < n; i++) {
        int64_t t0 = monotonic_ns();

        if (submit_true(ctx, NULL) != 0)
            return -1;
        lat_ms[i] = ms_since(t0);
    }
    *out_p50 = percentile(lat_ms, n, 0.50);
    *out_p99 = percentile(lat_ms, n, 0.99);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Row 2: CLIENTS threads at once
 * ------------------------------------------------------------------------------------------- */

typedef enum client_kind { CLIENT_SUBMIT, CLIENT_STATUS, CLIENT_PING } client_kind;

/* Where client threads wait until all exist, so that they start at once. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int is_open;
    int is_canceled; /* open, but do nothing: setting up another client failed */
} gate;

static int
gate_wait(gate *g)
{
    int canceled;

    (void)pthread_mutex_lock(&g->mu);
    while (!g->is_open)
        (void)pthread_cond_wait(&g->cond, &g->mu);
    canceled = g->is_canceled;
    (void)pthread_mutex_unlock(&g->mu);
    return canceled;
}

static void
gate_open(gate *g, int canceled)
{
    (void)pthread_mutex_lock(&g->mu);
    g->is_open = 1;
    g->is_canceled = canceled;
    (void)pthread_cond_broadcast(&g->cond);
    (void)pthread_mutex_unlock(&g->mu);
}

typedef struct client {
    pthread_t thread;
    client_kind kind;
    rx_context *ctx; /* CLIENT_SUBMIT, CLIENT_STATUS */
    rx_job *job;     /* CLIENT_STATUS */
    int fd;          /* CLIENT_PING */
    size_t n_ops;
    double *lat_ms; /* n_ops latencies */
    gate *start;
    int failed;
} client;

static int
client_op(client *c)
{
    switch (c->kind) {
    case CLIENT_SUBMIT:
        return submit_true(c->ctx, NULL);
    case CLIENT_STATUS:
        return status_queued(c->job);
    case CLIENT_PING:
        return ping(c->fd);
    }
    return -1;
}

static void *
client_main(void *arg)
{
    client *c = arg;

    if (gate_wait(c->start))
        return NULL;
    for (size_t i = 0; i < c->n_ops; i++) {
        int64_t t0 = monotonic_ns();

        if (client_op(c) != 0) {
            c->failed = 1;
            break;
        }
        c->lat_ms[i] = ms_since(t0);
    }
    return NULL;
}

/* Set up client k: its context and job handle, or its echo thread and connection; warmed up. */
static int
client_setup(bench *b, client *c, pthread_t *echo, int *n_echo)
{
    if (c->kind == CLIENT_PING) {
        if (pthread_create(echo, NULL, echo_main, b) != 0) {
            fprintf(stderr, "bench_server: pthread_create failed\n");
            return -1;
        }
        (*n_echo)++;
        c->fd = echo_connect(b);
        if (c->fd < 0)
            return -1;
    } else {
        if (server_context(&b->hold, &c->ctx) != 0)
            return -1;
        if (c->kind == CLIENT_STATUS && rx_job_open(c->ctx, b->status_id, &c->job) != RX_OK) {
            fprintf(stderr, "bench_server: rx_job_open failed\n");
            return -1;
        }
    }
    for (int i = 0; i < WARMUP_OPS; i++) {
        if (client_op(c) != 0)
            return -1;
    }
    return 0;
}

/*
 * CLIENTS clients of one kind, per_client operations each, all started at once. Each has its own
 * context (or echo connection), connected and warmed up before the clock starts. *out_rate is
 * operations per second of wall time; lat_ms (CLIENTS * per_client) gets every latency.
 */
static int
run_clients(bench *b, client_kind kind, size_t per_client, double *lat_ms, double *out_rate)
{
    client clients[CLIENTS];
    pthread_t echo[CLIENTS];
    gate start = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    int n_echo = 0, n_connected = 0, n_threads = 0;
    int64_t t0;
    double elapsed_s;
    int rc = -1;

    memset(clients, 0, sizeof(clients));
    for (int k = 0; k < CLIENTS; k++) {
        client *c = &clients[k];

        c->kind = kind;
        c->fd = -1;
        c->n_ops = per_client;
        c->lat_ms = lat_ms + (size_t)k * per_client;
        c->start = &start;
    }
    for (int k = 0; k < CLIENTS; k++) {
        if (client_setup(b, &clients[k], &echo[n_echo], &n_echo) != 0)
            goto done;
    }
    for (; n_threads < CLIENTS; n_threads++) {
        if (pthread_create(&clients[n_threads].thread, NULL, client_main, &clients[n_threads]) !=
            0) {
            fprintf(stderr, "bench_server: pthread_create failed\n");
            goto done;
        }
    }
    t0 = monotonic_ns();
    gate_open(&start, 0);
    for (int k = 0; k < n_threads; k++)
        (void)pthread_join(clients[k].thread, NULL);
    elapsed_s = ms_since(t0) / 1e3;
    n_threads = 0;
    rc = 0;
    for (int k = 0; k < CLIENTS; k++) {
        if (clients[k].failed)
            rc = -1;
    }
    *out_rate = (double)(CLIENTS * per_client) / elapsed_s;
done:
    if (n_threads > 0) {
        gate_open(&start, 1);
        for (int k = 0; k < n_threads; k++)
            (void)pthread_join(clients[k].thread, NULL);
    }
    for (int k = 0; k < CLIENTS; k++) {
        if (clients[k].fd >= 0) {
            close(clients[k].fd); /* its echo thread reads end-of-file and returns */
            n_connected++;
        }
        rx_job_free(clients[k].job);
        rx_context_free(clients[k].ctx);
    }
    for (int k = n_connected; k < n_echo; k++) {
        /* An echo thread still in accept (setup failed): hand it a connection to end. */
        int fd = echo_connect(b);

        if (fd >= 0)
            close(fd);
    }
    for (int k = 0; k < n_echo; k++)
        (void)pthread_join(echo[k], NULL);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Row 3: submit -> task started
 * ------------------------------------------------------------------------------------------- */

/* The stamp a `date +%s%N` printed: the last line of text that is a whole number of ns. */
static int
parse_stamp(const char *text, int64_t *out_ns)
{
    const char *line = text;
    int found = 0;

    while (line != NULL && *line != '\0') {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);

        if (len > 0 && len < 24 && strspn(line, "0123456789") == len) {
            char num[24];
            char *stop = NULL;
            long long v;

            memcpy(num, line, len);
            num[len] = '\0';
            errno = 0;
            v = strtoll(num, &stop, 10);
            if (errno == 0 && stop == num + len) {
                *out_ns = (int64_t)v;
                found = 1;
            }
        }
        line = end ? end + 1 : NULL;
    }
    return found ? 0 : -1;
}

/*
 * One job of one `date +%s%N` task: *out_start_ms from before rx_exec to the task's stamp,
 * *out_submit_ms from before rx_exec to its return. Then waits for the job, reads the stamp from
 * its output and collects it (cleaning it up); none of that is timed.
 */
static int
rxjob_stamp_once(rx_context *ctx, double *out_start_ms, double *out_submit_ms)
{
    rx_work work = rx_work_command(stamp_argv);
    rx_results *res = NULL;
    rx_job *job = NULL;
    char *out = NULL;
    size_t out_len = 0;
    FILE *f = NULL;
    int64_t t0, t1, stamp = 0;
    rx_err err;
    int rc = -1;

    t0 = clock_ns(CLOCK_REALTIME);
    err = rx_exec(ctx, &work, NULL, NULL, &job);
    t1 = clock_ns(CLOCK_REALTIME);
    if (err != RX_OK) {
        report_error("rx_exec", ctx, err);
        return -1;
    }
    err = rx_wait_for_job(job, JOB_WAIT_S);
    if (err != RX_OK) {
        report_error("rx_wait_for_job", ctx, err);
        goto done;
    }
    f = open_memstream(&out, &out_len);
    if (f == NULL) {
        fprintf(stderr, "bench_server: open_memstream: %s\n", strerror(errno));
        goto done;
    }
    err = rx_get_job_output(job, f);
    if (fclose(f) != 0 && err == RX_OK)
        err = RX_EIO;
    if (err != RX_OK) {
        report_error("rx_get_job_output", ctx, err);
        goto done;
    }
    err = rx_get_job_results(job, RX_FALSE, RX_TRUE, &res);
    if (err != RX_OK) {
        report_error("rx_get_job_results", ctx, err);
        if (res != NULL && rx_results_error(res, 0) != NULL)
            fprintf(stderr, "bench_server: task 0: %s\n", rx_results_error(res, 0));
        goto done;
    }
    if (parse_stamp(out, &stamp) != 0) {
        fprintf(stderr, "bench_server: job %" PRId64 ": no stamp in its output '%s'\n",
                rx_job_id(job), out);
        goto done;
    }
    *out_start_ms = (double)(stamp - t0) / 1e6;
    *out_submit_ms = (double)(t1 - t0) / 1e6;
    rc = 0;
done:
    rx_results_free(res);
    rx_job_free(job);
    free(out);
    return rc;
}

/* Floor: posix_spawnp of the same command, its stdout a pipe; ms from before the call to the
 * stamp. */
static int
floor_stamp_once(double *out_start_ms)
{
    posix_spawn_file_actions_t fa;
    char buf[STAMP_OUTPUT_MAX + 1];
    size_t len = 0;
    int fds[2];
    int64_t t0, stamp = 0;
    pid_t pid;
    int wstatus = 0;
    int rc;

    if (pipe2(fds, O_CLOEXEC) != 0) {
        fprintf(stderr, "bench_server: pipe: %s\n", strerror(errno));
        return -1;
    }
    rc = posix_spawn_file_actions_init(&fa);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    if (rc == 0) {
        t0 = clock_ns(CLOCK_REALTIME);
        rc = posix_spawnp(&pid, stamp_argv[0], &fa, NULL, (char *const *)stamp_argv, environ);
        posix_spawn_file_actions_destroy(&fa);
    }
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        fprintf(stderr, "bench_server: floor: posix_spawnp '%s': %s\n", stamp_argv[0],
                strerror(rc));
        return -1;
    }
    for (;;) {
        ssize_t got = read(fds[0], buf + len, STAMP_OUTPUT_MAX - len);

        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
        if (len == STAMP_OUTPUT_MAX)
            break;
    }
    buf[len] = '\0';
    close(fds[0]);
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0 || parse_stamp(buf, &stamp) != 0) {
        fprintf(stderr, "bench_server: floor: '%s' ended with status 0x%x, output '%s'\n",
                stamp_argv[0], (unsigned)wstatus, buf);
        return -1;
    }
    *out_start_ms = (double)(stamp - t0) / 1e6;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Row 5: many tasks in one job
 * ------------------------------------------------------------------------------------------- */

/* One job of n `true` tasks; *out_rate in tasks/s from before rx_exec to the end of the wait. */
static int
rxjob_many_tasks(rx_context *ctx, size_t n, double *out_rate)
{
    rx_work work = rx_work_command(true_argv);
    rx_exec_opts opts = RX_EXEC_OPTS_INIT;
    rx_results *res = NULL;
    rx_job *job = NULL;
    int64_t t0;
    double elapsed_ms;
    rx_err err;
    int rc = -1;

    opts.times_to_run = (int64_t)n;
    t0 = monotonic_ns();
    err = rx_exec(ctx, &work, &opts, NULL, &job);
    if (err != RX_OK) {
        report_error("rx_exec", ctx, err);
        return -1;
    }
    err = rx_wait_for_job(job, JOB_WAIT_S * 10);
    elapsed_ms = ms_since(t0);
    if (err != RX_OK) {
        report_error("rx_wait_for_job", ctx, err);
        goto done;
    }
    err = rx_get_job_results(job, RX_FALSE, RX_TRUE, &res);
    if (err != RX_OK && err != RX_EJOBFAILED) {
        report_error("rx_get_job_results", ctx, err);
        goto done;
    }
    if (rx_results_count(res) != n || rx_results_failed(res) != 0) {
        fprintf(stderr, "bench_server: %zu results (want %zu), %zu failed\n", rx_results_count(res),
                n, rx_results_failed(res));
        goto done;
    }
    *out_rate = (double)n / (elapsed_ms / 1e3);
    rc = 0;
done:
    rx_results_free(res);
    rx_job_free(job);
    return rc;
}

/* The daemon pid was reaped by a floor's waitpid(-1): it died. */
static int
reaped_daemon(bench *b, pid_t pid, int wstatus)
{
    daemon_proc *ds[2] = {&b->hold, &b->run};

    for (int i = 0; i < 2; i++) {
        if (ds[i]->pid == pid) {
            ds[i]->pid = 0;
            report_daemon_exit(ds[i], wstatus);
            return 1;
        }
    }
    return 0;
}

/* Floor: posix_spawnp("true") and waitpid(-1), 2 in flight. */
static int
floor_many_tasks(bench *b, size_t n, double *out_rate)
{
    char *const argv[] = {(char *)true_argv[0], NULL};
    pid_t inflight[2] = {0, 0};
    size_t started = 0, done = 0;
    int64_t t0 = monotonic_ns();

    while (done < n) {
        pid_t pid;
        int wstatus = 0;
        int k;

        for (k = 0; k < 2 && started < n; k++) {
            int rc;

            if (inflight[k] != 0)
                continue;
            rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
            if (rc != 0) {
                fprintf(stderr, "bench_server: floor: posix_spawnp 'true': %s\n", strerror(rc));
                goto fail;
            }
            inflight[k] = pid;
            started++;
        }
        do {
            pid = waitpid(-1, &wstatus, 0);
        } while (pid < 0 && errno == EINTR);
        if (pid < 0) {
            fprintf(stderr, "bench_server: floor: waitpid: %s\n", strerror(errno));
            goto fail;
        }
        k = inflight[0] == pid ? 0 : inflight[1] == pid ? 1 : -1;
        if (k < 0) {
            if (reaped_daemon(b, pid, wstatus))
                goto fail;
            continue;
        }
        inflight[k] = 0;
        done++;
        if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
            fprintf(stderr, "bench_server: floor: 'true' ended with status 0x%x\n",
                    (unsigned)wstatus);
            goto fail;
        }
    }
    *out_rate = (double)n / (ms_since(t0) / 1e3);
    return 0;
fail:
    for (int k = 0; k < 2; k++) {
        int wstatus;

        if (inflight[k] != 0)
            (void)waitpid(inflight[k], &wstatus, 0);
    }
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------------------------------- */

/* "label  N what  pXX median ... ms  min ... ms  max ... ms" (no newline). */
static void
print_ms(const char *label, size_t n, const char *what, const char *pct, stats st)
{
    printf("%-*s %6zu %-6s %-3s median %8.3f ms  min %8.3f ms  max %8.3f ms", LABEL_WIDTH, label, n,
           what, pct, st.median, st.min, st.max);
}

static void
print_rate(const char *label, size_t n, const char *what, stats st)
{
    printf("%-*s %6zu %-6s     median %8.0f/s   min %8.0f/s   max %8.0f/s", LABEL_WIDTH, label, n,
           what, st.median, st.min, st.max);
}

static void
print_ratio(const char *label, stats st, const char *goal, double goal_ratio)
{
    printf("%-*s               median %8.2f x   min %8.2f x   max %8.2f x   goal <= %s  %s\n",
           LABEL_WIDTH, label, st.median, st.min, st.max, goal,
           st.median <= goal_ratio ? "MET" : "NOT MET");
}

static void
print_header(const bench *b, int is_quick)
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
    printf("bench_server: rxjobd latency and throughput over its Unix socket, rxjob %s\n",
           rx_version());
    printf("date      %s\n", date);
    printf("machine   nproc %d (%ld online), %s %s %s, %s\n", nproc, online, un.sysname, un.release,
           un.machine, cpu);
    printf("state     %s (%s): sockets, state directories, the fdatasync floor's file\n", b->dir,
           fs_name(b->dir));
    printf("daemons   %s: --hold (pid %ld, rows 1 2 4), --slots %s (pid %ld, rows 3 5)\n",
           b->rxjobd, (long)b->hold.pid, RUN_SLOTS, (long)b->run.pid);
    printf("mode      %s: %d runs per row (rows 3 and 5: %d), alternating rxjob and its floors;\n"
           "          latencies: median/min/max over the runs of each run's percentile\n\n",
           is_quick ? "quick" : "full", RUNS, b->cnt->long_runs);
    (void)fflush(stdout);
}

/* ---------------------------------------------------------------------------------------------
 * Rows
 * ------------------------------------------------------------------------------------------- */

static int
row_submit_latency(bench *b, double *lat)
{
    const counts *cnt = b->cnt;
    double p50[RUNS], p99[RUNS], rtt[RUNS], sync[RUNS], ratio[RUNS];
    rx_context *ctx = NULL;
    cost c = {.daemon = b->hold.pid};
    char label[128];
    int rc = -1;

    if (server_context(&b->hold, &ctx) != 0)
        return -1;
    for (int i = 0; i < WARMUP_OPS; i++) {
        if (submit_true(ctx, i == 0 ? &b->status_id : NULL) != 0)
            goto done;
    }
    for (int r = 0; r < RUNS; r++) {
        cost_begin(&c);
        if (rxjob_submit_latency(ctx, cnt->submits, lat, &p50[r], &p99[r]) != 0)
            goto done;
        cost_end(&c, cnt->submits);
        if (floor_round_trip(b, cnt->submits, lat, &rtt[r]) != 0 ||
            floor_fdatasync(b, cnt->syncs, lat, &sync[r]) != 0)
            goto done;
        ratio[r] = p50[r] / (sync[r] + rtt[r]);
    }
    print_ms("1. submit latency: rx_exec, 1 client (hold)", cnt->submits, "jobs", "p50",
             stats_of(p50, RUNS));
    printf("\n");
    print_ms("", cnt->submits, "jobs", "p99", stats_of(p99, RUNS));
    printf("\n");
    print_ms("  floor: AF_UNIX 1-byte round trip, 1 CPU", cnt->submits, "pings", "p50",
             stats_of(rtt, RUNS));
    printf("\n");
    (void)snprintf(label, sizeof(label), "  floor: 4 KiB pwrite + fdatasync (%s)", fs_name(b->dir));
    print_ms(label, cnt->syncs, "syncs", "p50", stats_of(sync, RUNS));
    printf("\n");
    print_ratio("  submit p50 / (fdatasync + round trip)", stats_of(ratio, RUNS), "2.00 x",
                SUBMIT_GOAL_RATIO);
    print_cost(&c);
    rc = 0;
done:
    rx_context_free(ctx);
    return rc;
}

static int
row_concurrent_submit(bench *b, double *lat)
{
    size_t n = CLIENTS * b->cnt->per_client;
    double rate[RUNS], p50[RUNS], p99[RUNS], status_rate[RUNS], ping_rate[RUNS];
    double daemon_us = 0;
    stats st;

    for (int r = 0; r < RUNS; r++) {
        double cpu0 = proc_cpu_us(b->hold.pid);

        if (run_clients(b, CLIENT_SUBMIT, b->cnt->per_client, lat, &rate[r]) != 0)
            return -1;
        /* Per-thread figures would miss the connection threads, gone with their clients. */
        daemon_us += proc_cpu_us(b->hold.pid) - cpu0;
        p50[r] = percentile(lat, n, 0.50);
        p99[r] = percentile(lat, n, 0.99);
        if (run_clients(b, CLIENT_STATUS, b->cnt->per_client, lat, &status_rate[r]) != 0 ||
            run_clients(b, CLIENT_PING, b->cnt->per_client, lat, &ping_rate[r]) != 0)
            return -1;
    }
    st = stats_of(rate, RUNS);
    print_rate("2. submissions/s: 16 clients (hold)", n, "jobs", st);
    printf("   goal >= %.0f/s  %s\n", RATE_GOAL_PER_S,
           st.median >= RATE_GOAL_PER_S ? "MET" : "NOT MET");
    print_ms("     latency of one submission meanwhile", n, "jobs", "p50", stats_of(p50, RUNS));
    printf("\n");
    print_ms("", n, "jobs", "p99", stats_of(p99, RUNS));
    printf("\n");
    printf("  cost per submission: daemon CPU %.1f us (all threads, 10 ms ticks)\n",
           daemon_us / (double)(n * RUNS));
    print_rate("  ceiling: 16 clients rx_get_job_status", n, "reqs", stats_of(status_rate, RUNS));
    printf("\n");
    print_rate("  floor: 16 clients AF_UNIX round trips", n, "pings", stats_of(ping_rate, RUNS));
    printf("\n");
    return 0;
}

static int
row_submit_to_start(bench *b, double *lat, double *lat2)
{
    const counts *cnt = b->cnt;
    int runs = cnt->long_runs;
    double start[RUNS], submit[RUNS], spawn[RUNS], ratio[RUNS];
    rx_context *ctx = NULL;
    double ignored;
    int rc = -1;

    if (server_context(&b->run, &ctx) != 0)
        return -1;
    for (int i = 0; i < 2; i++) { /* warm up: connection, the daemon's first spawn */
        if (rxjob_stamp_once(ctx, &ignored, &ignored) != 0 || floor_stamp_once(&ignored) != 0)
            goto done;
    }
    for (int r = 0; r < runs; r++) {
        for (size_t i = 0; i < cnt->stamps; i++) {
            if (rxjob_stamp_once(ctx, &lat[i], &lat2[i]) != 0)
                goto done;
        }
        start[r] = percentile(lat, cnt->stamps, 0.50);
        submit[r] = percentile(lat2, cnt->stamps, 0.50);
        for (size_t i = 0; i < cnt->stamps; i++) {
            if (floor_stamp_once(&lat[i]) != 0)
                goto done;
        }
        spawn[r] = percentile(lat, cnt->stamps, 0.50);
        ratio[r] = start[r] / spawn[r];
    }
    print_ms("3. submit -> task started (idle, slots " RUN_SLOTS ")", cnt->stamps, "jobs", "p50",
             stats_of(start, (size_t)runs));
    printf("\n");
    print_ms("     of which rx_exec returned after", cnt->stamps, "jobs", "p50",
             stats_of(submit, (size_t)runs));
    printf("\n");
    print_ms("  floor: posix_spawnp -> started (date)", cnt->stamps, "spawns", "p50",
             stats_of(spawn, (size_t)runs));
    printf("\n");
    print_ratio("  submit->start / floor, per run pair", stats_of(ratio, (size_t)runs), "2.00 x",
                START_GOAL_RATIO);
    rc = 0;
done:
    rx_context_free(ctx);
    return rc;
}

static int
row_status(bench *b, double *lat)
{
    const counts *cnt = b->cnt;
    double p50[RUNS], rtt[RUNS], ratio[RUNS];
    rx_context *ctx = NULL;
    rx_job *job = NULL;
    cost c = {.daemon = b->hold.pid};
    int rc = -1;

    if (server_context(&b->hold, &ctx) != 0)
        return -1;
    if (rx_job_open(ctx, b->status_id, &job) != RX_OK) {
        fprintf(stderr, "bench_server: rx_job_open failed\n");
        goto done;
    }
    for (int i = 0; i < WARMUP_OPS; i++) {
        if (status_queued(job) != 0)
            goto done;
    }
    for (int r = 0; r < RUNS; r++) {
        cost_begin(&c);
        for (size_t i = 0; i < cnt->statuses; i++) {
            int64_t t0 = monotonic_ns();

            if (status_queued(job) != 0)
                goto done;
            lat[i] = ms_since(t0);
        }
        cost_end(&c, cnt->statuses);
        p50[r] = percentile(lat, cnt->statuses, 0.50);
        if (floor_round_trip(b, cnt->statuses, lat, &rtt[r]) != 0)
            goto done;
        ratio[r] = p50[r] / rtt[r];
    }
    print_ms("4. status query: rx_get_job_status (hold)", cnt->statuses, "reqs", "p50",
             stats_of(p50, RUNS));
    printf("\n");
    print_ms("  floor: AF_UNIX 1-byte round trip, 1 CPU", cnt->statuses, "pings", "p50",
             stats_of(rtt, RUNS));
    printf("\n");
    print_ratio("  status p50 / round trip, per run pair", stats_of(ratio, RUNS), "5.00 x",
                STATUS_GOAL_RATIO);
    print_cost(&c);
    rc = 0;
done:
    rx_job_free(job);
    rx_context_free(ctx);
    return rc;
}

static int
row_many_tasks(bench *b)
{
    int runs = b->cnt->long_runs;
    double rate[RUNS], floor_rate[RUNS];
    rx_context *ctx = NULL;
    char label[128];
    stats rx_st, floor_st;
    int rc = -1;

    if (server_context(&b->run, &ctx) != 0)
        return -1;
    for (int r = 0; r < runs; r++) {
        if (rxjob_many_tasks(ctx, b->cnt->tasks, &rate[r]) != 0 ||
            floor_many_tasks(b, b->cnt->tasks, &floor_rate[r]) != 0)
            goto done;
    }
    rx_st = stats_of(rate, (size_t)runs);
    floor_st = stats_of(floor_rate, (size_t)runs);
    (void)snprintf(label, sizeof(label), "5. `true` tasks in one job (slots %s)", RUN_SLOTS);
    print_rate(label, b->cnt->tasks, "tasks", rx_st);
    printf("\n");
    print_rate("  floor: posix_spawnp + waitpid(-1), 2 at once", b->cnt->tasks, "tasks", floor_st);
    printf("   rxjob/floor %.0f %%, +%.0f us/task\n", 100.0 * rx_st.median / floor_st.median,
           1e6 / rx_st.median - 1e6 / floor_st.median);
    rc = 0;
done:
    rx_context_free(ctx);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------------------------- */

#define FLOORS_ROUND_TRIPS 500
#define FLOORS_SYNCS       200

/* --floors N: the floors alone, once, on one line of key=value pairs (for bench/compare). b->dir
 * exists; no daemon runs. Returns 0 or -1. */
static int
floors_only(bench *b, size_t n_spawn)
{
    double lat[FLOORS_ROUND_TRIPS];
    double rt_p50 = 0, sync_p50 = 0, spawn_rate = 0;

    if (echo_listen(b) != 0 || sync_file_open(b) != 0 ||
        floor_round_trip(b, FLOORS_ROUND_TRIPS, lat, &rt_p50) != 0 ||
        floor_fdatasync(b, FLOORS_SYNCS, lat, &sync_p50) != 0 ||
        floor_many_tasks(b, n_spawn, &spawn_rate) != 0)
        return -1;
    printf("floor_rt_p50_ms=%.4f floor_fdatasync_p50_ms=%.4f floor_spawn_per_s=%.1f\n", rt_p50,
           sync_p50, spawn_rate);
    return 0;
}

static void
usage(FILE *out)
{
    fprintf(out, "usage: bench_server [--quick] [--rxjobd PATH]\n"
                 "       bench_server --floors N\n"
                 "  rxjobd's submit latency, submissions/s, submit->start latency, status latency\n"
                 "  and tasks/s, beside floors measured in the same run. It starts its own\n"
                 "  daemons (PATH, default ../rxjobd next to this program) under $TMPDIR.\n"
                 "  --quick runs smaller counts (a smoke run). --floors N: only the floors\n"
                 "  (round trip, fdatasync, N spawns of `true`), once, on one line.\n");
}

/* ../rxjobd next to this program, as the build tree lays them out. */
static int
default_rxjobd(char *buf, size_t size)
{
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash;

    if (len <= 0)
        return -1;
    self[len] = '\0';
    slash = strrchr(self, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    return snprintf(buf, size, "%s/../rxjobd", self) < (int)size ? 0 : -1;
}

int
main(int argc, char **argv)
{
    bench b;
    char path[PATH_MAX];
    const char *rxjobd = NULL;
    const char *tmp = getenv("TMPDIR");
    double *lat = NULL, *lat2 = NULL;
    size_t lat_n;
    long floors_n = 0; /* --floors N: only the floors */
    int is_quick = 0;
    int status = 1;

    memset(&b, 0, sizeof(b));
    b.echo_fd = -1;
    b.sync_fd = -1;
    b.hold.name = "hold";
    b.run.name = "run";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            is_quick = 1;
        } else if (strcmp(argv[i], "--rxjobd") == 0 && i + 1 < argc) {
            rxjobd = argv[++i];
        } else if (strcmp(argv[i], "--floors") == 0 && i + 1 < argc) {
            char *end;

            errno = 0;
            floors_n = strtol(argv[++i], &end, 10);
            if (errno != 0 || *end != '\0' || floors_n < 1 || floors_n > 10000000) {
                fprintf(stderr, "bench_server: --floors wants a count 1..10000000\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    b.cnt = is_quick ? &quick_counts : &full_counts;
    if (floors_n > 0) {
        if (tmp == NULL || tmp[0] == '\0')
            tmp = "/tmp";
        (void)snprintf(b.dir, sizeof(b.dir), "%s/rxbench-floors-XXXXXX", tmp);
        if (mkdtemp(b.dir) == NULL) {
            fprintf(stderr, "bench_server: mkdtemp '%s': %s\n", b.dir, strerror(errno));
            return 1;
        }
        status = floors_only(&b, (size_t)floors_n) == 0 ? 0 : 1;
        if (b.echo_fd >= 0)
            close(b.echo_fd);
        if (b.sync_fd >= 0)
            close(b.sync_fd);
        (void)nftw(b.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        if (fflush(stdout) != 0)
            status = 1;
        return status;
    }
    if (rxjobd != NULL) {
        (void)snprintf(b.rxjobd, sizeof(b.rxjobd), "%s", rxjobd);
    } else if (default_rxjobd(b.rxjobd, sizeof(b.rxjobd)) != 0) {
        fprintf(stderr, "bench_server: cannot find rxjobd next to this program: use --rxjobd\n");
        return 1;
    }
    if (realpath(rxjobd != NULL ? rxjobd : b.rxjobd, path) != NULL)
        (void)snprintf(b.rxjobd, sizeof(b.rxjobd), "%s", path);
    if (access(b.rxjobd, X_OK) != 0) {
        fprintf(stderr, "bench_server: rxjobd '%s': %s (build it, or use --rxjobd)\n", b.rxjobd,
                strerror(errno));
        return 1;
    }

    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    (void)snprintf(b.dir, sizeof(b.dir), "%s/rxbench-server-XXXXXX", tmp);
    if (mkdtemp(b.dir) == NULL) {
        fprintf(stderr, "bench_server: mkdtemp '%s': %s\n", b.dir, strerror(errno));
        return 1;
    }

    /* The daemons first, while this process has no other thread (fork). */
    if (daemon_spawn(&b, &b.hold, 1) != 0 || daemon_spawn(&b, &b.run, 0) != 0 ||
        daemon_wait_ready(&b.hold) != 0 || daemon_wait_ready(&b.run) != 0)
        goto done;
    if (echo_listen(&b) != 0 || sync_file_open(&b) != 0)
        goto done;

    lat_n = CLIENTS * b.cnt->per_client;
    if (lat_n < b.cnt->submits)
        lat_n = b.cnt->submits;
    if (lat_n < b.cnt->statuses)
        lat_n = b.cnt->statuses;
    lat = calloc(lat_n, sizeof(*lat));
    lat2 = calloc(lat_n, sizeof(*lat2));
    if (lat == NULL || lat2 == NULL) {
        fprintf(stderr, "bench_server: out of memory\n");
        goto done;
    }

    print_header(&b, is_quick);
    if (row_submit_latency(&b, lat) != 0)
        goto done;
    (void)fflush(stdout);
    if (row_concurrent_submit(&b, lat) != 0)
        goto done;
    (void)fflush(stdout);
    if (row_submit_to_start(&b, lat, lat2) != 0)
        goto done;
    (void)fflush(stdout);
    if (row_status(&b, lat) != 0)
        goto done;
    (void)fflush(stdout);
    if (row_many_tasks(&b) != 0)
        goto done;
    status = 0;
done:
    if (fflush(stdout) != 0) {
        fprintf(stderr, "bench_server: writing stdout: %s\n", strerror(errno));
        status = 1;
    }
    if (daemon_stop(&b.hold) != 0)
        status = 1;
    if (daemon_stop(&b.run) != 0)
        status = 1;
    if (status != 0 && b.hold.log[0] != '\0') {
        print_log_tail(&b.hold);
        print_log_tail(&b.run);
    }
    if (b.echo_fd >= 0)
        close(b.echo_fd);
    if (b.sync_fd >= 0)
        close(b.sync_fd);
    free(lat);
    free(lat2);
    (void)nftw(b.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return status;
}
