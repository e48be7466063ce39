/*
 * test_chunk.c - function tasks run in chunks by rxjobd (docs/engine.md "Chunks"), against a
 * real daemon with 2 slots: one supervisor and one exec of this program run a whole chunk of
 * tasks (and, test_cmdchunk_*, command tasks with task_chunk_size: one supervisor runs a chunk's
 * commands one after the other, "Chunks of command tasks"); a failure, a crash, a time limit or a
 * cancel inside a chunk ends that task, and the tasks after it that never started are put back and
 * run (or not, when the job stopped); a daemon killed with SIGKILL mid-chunk and started again ends
 * every task exactly once, or LOST, and never runs one twice.
 *
 * Each task appends "<index> <pid>" to a log file (its argument names it, with what to do) as
 * the first thing it does: proof of how many times, and in which process, each task ran.
 *
 * Without an rxjobd binary every test is skipped.
 */
#define _GNU_SOURCE
#include "rxjob.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs the declarations of the headers above. */
#include <cmocka.h>

extern char **environ;

#define MAX_TASKS 64

static char daemon_path[PATH_MAX];
static char tmpdir[256];
static char url[300];
static pid_t daemon_pid = -1;

/* ---------------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------------- */

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int
socket_answers(const char *path)
{
    struct sockaddr_un addr;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc;

    if (fd < 0)
        return 0;
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(addr.sun_path)) {
        close(fd);
        return 0;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    rc = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
    close(fd);
    return rc == 0;
}

/* rxjobd --slots 2 on TMP/d.sock, state TMP/state, log TMP/d.log (appended: restarts share
 * them). Its pid once the socket answers, or -1. */
static pid_t
start_daemon(void)
{
    char sock[320], state[320], log[320];
    char *argv[] = {daemon_path, "--foreground", "--socket", sock, "--state-dir",
                    state,       "--slots",      "2",        NULL};
    posix_spawn_file_actions_t fa;
    pid_t pid;

    (void)snprintf(sock, sizeof(sock), "%s/d.sock", tmpdir);
    (void)snprintf(state, sizeof(state), "%s/state", tmpdir);
    (void)snprintf(log, sizeof(log), "%s/d.log", tmpdir);
    (void)unlink(sock);
    if (posix_spawn_file_actions_init(&fa) != 0 ||
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) != 0 ||
        posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, 1, 2) != 0 ||
        posix_spawn(&pid, daemon_path, &fa, NULL, argv, environ) != 0)
        return -1;
    posix_spawn_file_actions_destroy(&fa);
    for (int64_t deadline = now_ms() + 20000; !socket_answers(sock);) {
        int st;

        if (waitpid(pid, &st, WNOHANG) == pid || now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        sleep_ms(10);
    }
    return pid;
}

static void
stop_daemon(pid_t pid, int sig)
{
    int st;

    if (pid <= 0)
        return;
    kill(pid, sig);
    for (int i = 0; i < 1000; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
}

static void
skip_without_daemon(void)
{
    if (daemon_pid <= 0)
        skip();
}

static rx_context *
context(void)
{
    rx_context *ctx = NULL;

    assert_int_equal(rx_server_context(url, &ctx), RX_OK);
    assert_int_equal(rx_context_set_wait(ctx, 0), RX_OK);
    return ctx;
}

/* A fresh log file for one test: TMP/<name>.log. */
static void
log_path(char *buf, size_t len, const char *name)
{
    (void)snprintf(buf, len, "%s/%s.log", tmpdir, name);
    (void)unlink(buf);
}

/* Per index, how many times the log says it ran, and the pid of its last run. */
static void
read_log(const char *path, int *runs, long *pids)
{
    FILE *f = fopen(path, "r");
    unsigned long idx;
    long pid;

    memset(runs, 0, MAX_TASKS * sizeof(*runs));
    if (f == NULL)
        return;
    while (fscanf(f, "%lu %ld", &idx, &pid) == 2) {
        assert_true(idx < MAX_TASKS);
        runs[idx]++;
        pids[idx] = pid;
    }
    fclose(f);
}

/* One test's chunked job: its log (TMP/<name>.log, read_log), n arguments "ACTION LOG" (ACTION
 * for index i from action(i)), and the options that give them, in chunks of chunk tasks. */
typedef struct chunk_case {
    char log[320];
    char bufs[MAX_TASKS][400];
    rx_buf args[MAX_TASKS];
    rx_exec_opts opts;
} chunk_case;

static void
chunk_case_init(chunk_case *c, const char *name, size_t n, const char *(*action)(size_t),
                unsigned chunk)
{
    const rx_exec_opts init = RX_EXEC_OPTS_INIT;

    assert_true(n <= MAX_TASKS);
    log_path(c->log, sizeof(c->log), name);
    for (size_t i = 0; i < n; i++) {
        (void)snprintf(c->bufs[i], sizeof(c->bufs[i]), "%s %s", action(i), c->log);
        c->args[i].data = c->bufs[i];
        c->args[i].len = strlen(c->bufs[i]);
    }
    c->opts = init;
    c->opts.elem_args = c->args;
    c->opts.n_elem_args = n;
    c->opts.task_chunk_size = chunk;
}

/* ---------------------------------------------------------------------------------------------
 * The function the tasks run (in this program, started again by the daemon)
 * ------------------------------------------------------------------------------------------- */

/* Armed by the action "die": rx_init's rename of the task's output file to t<i>.out arms
 * die_at_dup2, and its next dup2 (pointing fd 1 at the fresh r<first>.out for the next task,
 * before it says the task ended) kills the program. These replace libc's for this program: the
 * moment a time limit or a cancel may hit, made certain. */
static volatile sig_atomic_t die_after_rename, die_at_dup2;

int
rename(const char *from, const char *to)
{
    int rc = renameat(AT_FDCWD, from, AT_FDCWD, to);

    if (rc == 0 && die_after_rename)
        die_at_dup2 = 1;
    return rc;
}

int
dup2(int from, int to)
{
    if (die_at_dup2)
        raise(SIGKILL);
    return dup3(from, to, 0) < 0 && from != to ? -1 : to;
}

static void
hang_at_exit(void)
{
    sleep_ms(120000);
}

static void
say_bye(void)
{
    printf("bye\n");
    fflush(stdout);
}

/* Argument "ACTION LOG": append "<index> <pid>" to LOG, say a line on stdout and on stderr (not
 * with quiet), then ACTION: ok (result "r<index> <pid>"), quiet (as ok), fail, segv, abort, slow
 * (400 ms, then ok), child (start `sleep 300`, its pid in LOG.child, then as slow), hang (60 s),
 * atexit (the program hangs at exit), bye (as ok; the program says "bye" at exit); quiet and
 * then as ok: hide (points fd 1 and 2 at /dev/null), shut (closes them), unlink (removes the file
 * fd 1 names: its own output file). */
RX_FUNCTION(chunk_step)
{
    size_t len = 0, i = rx_task_index(task);
    const char *arg = rx_task_arg(task, &len);
    char action[16], log[400], line[64];
    int fd, n;

    if (sscanf(arg, "%15s %399s", action, log) != 2)
        return rx_task_fail(task, "bad argument '%s'", arg);
    fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    n = snprintf(line, sizeof(line), "%zu %ld\n", i, (long)getpid());
    if (fd < 0 || write(fd, line, (size_t)n) != n)
        return rx_task_fail(task, "cannot log");
    close(fd);
    if (strcmp(action, "quiet") != 0 && strcmp(action, "hide") != 0 &&
        strcmp(action, "shut") != 0 && strcmp(action, "unlink") != 0) {
        printf("out %zu\n", i);
        fflush(stdout);
        fprintf(stderr, "err %zu\n", i);
    }
    if (strcmp(action, "hide") == 0) {
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

        if (null < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
            return rx_task_fail(task, "cannot point fd 1 and 2 at /dev/null");
        close(null);
    }
    if (strcmp(action, "shut") == 0) {
        close(1);
        close(2);
    }
    if (strcmp(action, "unlink") == 0) {
        /* r0.out, the output of the task running now in a run from task 0, is in the job's
         * directory, where fd 1's file is (made unnamed, then linked: its name says so). */
        char own[PATH_MAX], *slash;
        ssize_t olen = readlink("/proc/self/fd/1", own, sizeof(own) - 16);

        if (olen <= 0)
            return rx_task_fail(task, "cannot read /proc/self/fd/1");
        own[olen] = '\0';
        slash = strrchr(own, '/');
        if (slash == NULL)
            return rx_task_fail(task, "fd 1 is '%s'", own);
        (void)snprintf(slash, 16, "/r0.out");
        if (unlink(own) != 0)
            return rx_task_fail(task, "cannot remove '%s'", own);
    }
    if (strcmp(action, "die") == 0)
        die_after_rename = 1; /* killed once its output is t<i>.out, before it says it ended */
    if (strcmp(action, "fail") == 0)
        return rx_task_fail(task, "task %zu fails on purpose", i);
    if (strcmp(action, "segv") == 0) {
        fflush(stdout);
        (void)signal(SIGSEGV, SIG_DFL); /* a sanitizer's handler would turn it into exit 1 */
        raise(SIGSEGV);
    }
    if (strcmp(action, "abort") == 0) {
        fflush(stdout);
        abort();
    }
    if (strcmp(action, "slow") == 0)
        sleep_ms(400);
    if (strcmp(action, "child") == 0) {
        /* A child that never writes to the supervisor's pipe (it cannot die of SIGPIPE when
         * the supervisor is gone): its pid in LOG.child, then 400 ms as "slow". */
        char cpath[420], cline[32];
        pid_t c = fork();
        int cfd, cn;

        if (c == 0) {
            execlp("sleep", "sleep", "300", (char *)NULL);
            _exit(127);
        }
        (void)snprintf(cpath, sizeof(cpath), "%s.child", log);
        cfd = open(cpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        cn = snprintf(cline, sizeof(cline), "%ld\n", (long)c);
        if (c < 0 || cfd < 0 || write(cfd, cline, (size_t)cn) != cn)
            return rx_task_fail(task, "cannot start or log a child");
        close(cfd);
        sleep_ms(400);
    }
    if (strcmp(action, "hang") == 0)
        sleep_ms(60000);
    if (strcmp(action, "garble") == 0) {
        /* A line the chunk protocol does not have on the supervisor's pipe, then a hang: the
         * supervisor must find it while the program lives, and stop it. */
        int pipe_fd = -1;

        /* rx_init took RXJOB_CHUNK_FD out of the environment: the pipe is the one fd that is a
         * pipe open for writing. */
        for (int k = 3; k < 64 && pipe_fd < 0; k++) {
            char fdp[32], target[64];
            ssize_t tl;

            (void)snprintf(fdp, sizeof(fdp), "/proc/self/fd/%d", k);
            tl = readlink(fdp, target, sizeof(target) - 1);
            if (tl > 5 && strncmp(target, "pipe:", 5) == 0 &&
                (fcntl(k, F_GETFL) & O_ACCMODE) == O_WRONLY)
                pipe_fd = k;
        }
        if (pipe_fd < 0 || write(pipe_fd, "zz 1\n", 5) != 5)
            return rx_task_fail(task, "cannot find or write the supervisor's pipe");
        sleep_ms(60000);
    }
    if (strcmp(action, "atexit") == 0)
        (void)atexit(hang_at_exit); /* the program hangs after its last task */
    if (strcmp(action, "bye") == 0)
        (void)atexit(say_bye); /* the program says "bye" after its last task */
    if (strcmp(action, "big") == 0) {
        /* 100 000 + i bytes of one letter: values read from one file, one after another. */
        size_t blen = 100000 + i;
        char *big = malloc(blen);
        int rc;

        if (big == NULL)
            return rx_task_fail(task, "out of memory");
        memset(big, 'a' + (int)(i % 26), blen);
        rc = rx_task_set_result(task, big, blen) == RX_OK ? 0 : -1;
        free(big);
        return rc;
    }
    (void)snprintf(line, sizeof(line), "r%zu %ld", i, (long)getpid());
    return rx_task_set_result_str(task, line) == RX_OK ? 0 : -1;
}

static rx_job *
submit(rx_context *ctx, const rx_exec_opts *opts)
{
    rx_work work = rx_work_function(chunk_step);
    rx_job *job = NULL;
    rx_err err = rx_exec(ctx, &work, opts, NULL, &job);

    if (err != RX_OK)
        fail_msg("rx_exec: %s: %s", rx_errname(err), rx_context_errmsg(ctx));
    assert_non_null(job);
    return job;
}

/* The command of every task: its argument "ACTION LOG" comes last. It appends "<index> <its
 * supervisor's pid>" to LOG, says a line on stdout and stderr, does ACTION (ok, fail: exit 3,
 * slow: 0.4 s, hang: 60 s, stubborn: 60 s ignoring SIGTERM), and sets its result to
 * "r<index> <supervisor pid>". */
static const char cmd_script[] =
    "set -- $1; echo \"$RXJOB_TASK_INDEX $PPID\" >>\"$2\"; echo \"out $RXJOB_TASK_INDEX\"; "
    "echo \"err $RXJOB_TASK_INDEX\" >&2; case $1 in fail) exit 3;; slow) sleep 0.4;; "
    "hang) sleep 60;; stubborn) trap '' TERM; sleep 60;; esac; "
    "printf \"r%s %s\" \"$RXJOB_TASK_INDEX\" \"$PPID\" >\"$RXJOB_RESULT\"";

static rx_job *
submit_cmd(rx_context *ctx, const rx_exec_opts *opts)
{
    static const char *const argv[] = {"sh", "-c", cmd_script, "sh", NULL};
    rx_work work = rx_work_command(argv);
    rx_job *job = NULL;
    rx_err err = rx_exec(ctx, &work, opts, NULL, &job);

    if (err != RX_OK)
        fail_msg("rx_exec: %s: %s", rx_errname(err), rx_context_errmsg(ctx));
    assert_non_null(job);
    return job;
}

/* How a test submits its chunked job: submit (function tasks) or submit_cmd (commands). */
typedef rx_job *submit_fn(rx_context *ctx, const rx_exec_opts *opts);

/* The pid in task i's result "r<i> <pid>", or -1 when it is not that. */
static long
result_pid(const rx_results *res, size_t i)
{
    size_t len = 0;
    const char *v = rx_results_value(res, i, &len);
    char want[32];
    long pid = -1;

    (void)snprintf(want, sizeof(want), "r%zu ", i);
    if (v == NULL || len < strlen(want) || strncmp(v, want, strlen(want)) != 0 ||
        sscanf(v + strlen(want), "%ld", &pid) != 1)
        return -1;
    return pid;
}

static rx_results *
wait_results(rx_job *job, double timeout_s)
{
    rx_results *res = NULL;

    rx_err err;

    assert_int_equal(rx_wait_for_job(job, timeout_s), RX_OK);
    err = rx_get_job_results(job, RX_FALSE, RX_TRUE, &res);
    assert_true(err == RX_OK || err == RX_EJOBFAILED); /* the latter with the results */
    assert_non_null(res);
    return res;
}

static char *
job_output(rx_job *job)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    assert_int_equal(rx_get_job_output(job, f), RX_OK);
    fclose(f);
    return buf;
}

static const char *
act_ok(size_t i)
{
    (void)i;
    return "ok";
}

static const char *
act_fail5(size_t i)
{
    return i == 5 ? "fail" : "ok";
}

static const char *
act_crash(size_t i)
{
    return i == 3 ? "segv" : i == 12 ? "abort" : "ok";
}

static const char *
act_garble(size_t i)
{
    return i == 2 ? "garble" : "ok";
}

/* A program that breaks the protocol and then hangs is found out and stopped while it runs
 * (the supervisor reads the pipe every few ms when there is no time limit, not at each message):
 * the task it was on fails saying so, the ones before keep their ends, the ones after run
 * again, each once. */
static void
test_chunk_protocol_broken(void **state)
{
    chunk_case c;
    rx_context *ctx;
    rx_job *job;
    rx_results *res;
    int runs[MAX_TASKS];
    long pids[MAX_TASKS];

    (void)state;
    skip_without_daemon();
    chunk_case_init(&c, "garble", 6, act_garble, 6);
    ctx = context();
    job = submit(ctx, &c.opts);
    assert_int_equal(rx_wait_for_job(job, 30), RX_OK);
    res = wait_results(job, 30);
    assert_int_equal(rx_results_status(res), RX_JOB_FAILED);
    read_log(c.log, runs, pids);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(runs[i], 1);
        if (i == 2) {
            assert_int_equal(rx_results_state(res, i), RX_TASK_ERROR);
            if (strstr(rx_results_error(res, i), "broke the chunk protocol") == NULL)
                fail_msg("task 2: %s", rx_results_error(res, i));
        } else {
            assert_int_equal(rx_results_state(res, i), RX_TASK_OK);
        }
    }
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
}

static const char *
act_timeout(size_t i)
{
    return i < 3 ? "slow" : i == 3 ? "hang" : "ok";
}

static const char *
act_big(size_t i)
{
    return i == 2 ? "ok" : "big";
}

static const char *
act_atexit(size_t i)
{
    return i == 2 ? "atexit" : "ok";
}

/* Runs [0, 6) and [6, 12): tasks that say nothing between ones that do; 4 crashes after two
 * quiet ones; 11, the last of its run, has the program say "bye" at exit. */
static const char *
act_quiet(size_t i)
{
    return i == 4 ? "segv" : i == 11 ? "bye" : i % 3 == 0 ? "ok" : "quiet";
}

/* One run of 9: tasks that take fd 1 and 2 away from the output file, or remove it, before
 * ones that print. */
static const char *
act_fds(size_t i)
{
    return i == 1 ? "hide" : i == 3 ? "shut" : i == 5 ? "unlink" : "ok";
}

static const char *
act_slow(size_t i)
{
    (void)i;
    return "slow";
}

static const char *
act_child(size_t i)
{
    return i == 0 ? "child" : "slow";
}

static int
log_lines(const char *path)
{
    int runs[MAX_TASKS], n = 0;
    long pids[MAX_TASKS];

    read_log(path, runs, pids);
    for (int i = 0; i < MAX_TASKS; i++)
        n += runs[i];
    return n;
}

/* Wait until the log has at least n lines (20 s at most). */
static void
await_log(const char *path, int n)
{
    for (int64_t deadline = now_ms() + 20000; log_lines(path) < n;) {
        if (now_ms() > deadline)
            fail_msg("the tasks did not start: %s has %d lines", path, log_lines(path));
        sleep_ms(20);
    }
}

/* 1 if pid is a live process (not a zombie), after up to 2 s for a kill to land. */
static int
process_alive(pid_t pid)
{
    for (int tries = 0; tries < 200; tries++) {
        char path[64], buf[512];
        FILE *f;
        char *p;
        char st = 'Z';

        (void)snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
        f = fopen(path, "r");
        if (f == NULL)
            return 0;
        p = fgets(buf, sizeof(buf), f);
        fclose(f);
        if (p != NULL && (p = strrchr(buf, ')')) != NULL)
            (void)sscanf(p + 1, " %c", &st);
        if (st == 'Z' || st == 'X')
            return 0;
        sleep_ms(10);
    }
    return 1;
}

/* The parent of pid (/proc/PID/stat field 4), or -1. */
static pid_t
parent_of(pid_t pid)
{
    char path[64], buf[512], st;
    FILE *f;
    char *p;
    long ppid = -1;

    (void)snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    p = fgets(buf, sizeof(buf), f);
    fclose(f);
    if (p == NULL || (p = strrchr(buf, ')')) == NULL || sscanf(p + 1, " %c %ld", &st, &ppid) != 2)
        return -1;
    return (pid_t)ppid;
}

/* ---------------------------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------------------------- */

/* 40 tasks in chunks of 10: four processes (the program for function tasks, the supervisor for
 * commands: what the log names), ten tasks each; results in task order; each task's output is
 * its own. */
static void
check_results_in_order(submit_fn *sub, const char *name)
{
    chunk_case c;
    rx_context *ctx;
    rx_job *job;
    rx_results *res;
    int runs[MAX_TASKS];
    long pids[MAX_TASKS];
    char *out;

    skip_without_daemon();
    chunk_case_init(&c, name, 40, act_ok, 10);
    ctx = context();
    job = sub(ctx, &c.opts);
    assert_int_equal(rx_wait_for_job(job, 120), RX_OK);
    out = job_output(job);
    for (size_t i = 0; i < 40; i++) {
        char want[64];

        (void)snprintf(want, sizeof(want), "==> task %zu <==\nout %zu\nerr %zu\n", i, i, i);
        if (strstr(out, want) == NULL)
            fail_msg("task %zu's output is not its own: %s", i, out);
    }
    free(out);
    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_TRUE, &res), RX_OK);
    assert_int_equal(rx_results_count(res), 40);
    assert_int_equal(rx_results_status(res), RX_JOB_FINISHED);
    read_log(c.log, runs, pids);
    for (size_t i = 0; i < 40; i++) {
        assert_int_equal(rx_results_state(res, i), RX_TASK_OK);
        assert_int_equal(runs[i], 1);
        /* One process per chunk: the tasks of a chunk share it, the chunks do not. */
        assert_int_equal(result_pid(res, i), pids[i]);
        assert_int_equal(pids[i], pids[i - i % 10]);
        if (i % 10 == 0 && i > 0)
            assert_int_not_equal(pids[i], pids[i - 10]);
    }
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
}

static void
test_chunk_results_in_order(void **state)
{
    (void)state;
    check_results_in_order(submit, "order");
}

/* The same with commands (task_chunk_size on command work): one supervisor per chunk. */
static void
test_cmdchunk_results(void **state)
{
    (void)state;
    check_results_in_order(submit_cmd, "cmd_order");
}

/* Large results of a chunk (the chunk's results file, one after another) come back whole and
 * each in its place, a small one between them. */
static void
test_chunk_big_results(void **state)
{
    chunk_case c;
    rx_context *ctx;
    rx_job *job;
    rx_results *res;

    (void)state;
    skip_without_daemon();
    chunk_case_init(&c, "big", 6, act_big, 6);
    ctx = context();
    job = submit(ctx, &c.opts);
    res = wait_results(job, 120);
    assert_int_equal(rx_results_status(res), RX_JOB_FINISHED);
    for (size_t i = 0; i < 6; i++) {
        size_t len = 0;
        const char *v = rx_results_value(res, i, &len);

        assert_non_null(v);
        if (i == 2) {
            assert_true(result_pid(res, i) > 0);
            continue;
        }
        assert_int_equal(len, 100000 + i);
        for (size_t k = 0; k < len; k++)
            if (v[k] != 'a' + (int)(i % 26))
                fail_msg("task %zu: byte %zu is '%c'", i, k, v[k]);
    }
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
}

/* A failing task mid-chunk, continue_on_failure on: it fails, the program goes on with the rest
 * of its chunk. */
static void
test_chunk_fail_continue(void **state)
{
    chunk_case c;
    rx_context *ctx;
    rx_job *job;
    rx_results *res;
    int runs[MAX_TASKS];
    long pids[MAX_TASKS];

    (void)state;
    skip_without_daemon();
    chunk_case_init(&c, "failc", 20, act_fail5, 10);
    ctx = context();
    job = submit(ctx, &c.opts);
    res = wait_results(job, 120);
    assert_int_equal(rx_results_status(res), RX_JOB_FAILED);
    assert_int_equal(rx_results_failed(res), 1);
    read_log(c.log, runs, pids);
    for (size_t i = 0; i < 20; i++) {
        assert_int_equal(runs[i], 1);
        if (i == 5) {
            assert_int_equal(rx_results_state(res, i), RX_TASK_ERROR);
            assert_string_equal(rx_results_error(res, i), "task 5 fails on purpose");
        } else {
            assert_int_equal(rx_results_state(res, i), RX_TASK_OK);
        }
        assert_int_equal(pids[i], pids[i - i % 10]); /* the same process went on */
    }
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
}

/* The same with continue_on_failure off (one supervisor at a time, num_tasks 1): the program
 * stops at the failure; no task after it ever starts. */
static void
test_chunk_fail_stop(void **state)
{
    chunk_case c;
    rx_context *ctx;
    rx_job *job;
    rx_results *res;
    int runs[MAX_TASKS];
    long pids[MAX_TASKS];

    (void)state;
    skip_without_daemon();
    chunk_case_init(&c, "fails", 20, act_fail5, 10);
    c.opts.num_tasks = 1;
    c.opts.continue_on_failure = RX_FALSE;
    ctx = context();
    job = submit(ctx, &c.opts);
    res = wait_results(job, 120);
    assert_int_equal(rx_results_status(res), RX_JOB_FAILED);
    read_log(c.log, runs, pids);
    for (size_t i = 0; i < 20; i++) {
        if (i < 5)
            assert_int_equal(rx_results_state(res, i), RX_TASK_OK);
        else if (i == 5)
            assert_int_equal(rx_results_state(res, i), RX_TASK_ERROR);
        else
            assert_int_equal(rx_results_state(res, i), RX_TASK_NOT_RUN);
        assert_int_equal(runs[i], i <= 5 ? 1 : 0);
    }
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
}

/* A crash mid-chunk (SIGSEGV at task 3, abort at task 12): that task is SIGNALED, the tasks
 * after it in its chunk never started, are put back and run (in other processes), once. */
static void
test_chunk_crash(void **state)
{
    chunk_case c;
    rx_context *ctx;
    rx_job *job;
    rx_results *res;
    int runs[MAX_TASKS];
    long pids[MAX_TASKS];
    char *out;

    (void)state;
    skip_without_daemon();
    chunk_case_init(&c, "crash", 20, act_crash, 10);
    ctx = context();
    job = submit(ctx, &c.opts);
    assert_int_equal(rx_wait_for_job(job, 120), RX_OK);
    /* What the crashed task wrote before it died is its output. */
    out = job_output(job);
    if (strstr(out, "==> task 3 <==\nout 3\nerr 3\n") == NULL ||
        strstr(out, "==> task 12 <==\nout 12\nerr 12\n") == NULL)
        fail_msg("the crashed tasks' output is not theirs: %s", out);
    free(out);
    res = wait_results(job, 120);
    assert_int_equal(rx_results_status(res), RX_JOB_FAILED);
    assert_int_equal(rx_results_failed(res), 2);
    read_log(c.log, runs, pids);
    for (size_t i = 0; i < 20; i++) {
        assert_int_equal(runs[i], 1);
        if (i == 3 || i == 12) {
            assert_int_equal(rx_results_state(res, i), RX_TASK_SIGNALED);
            assert_int_equal(rx_results_signal(res, i), i == 3 ? SIGSEGV : SIGABRT);
        } else {
            assert_int_equal(rx_results_state(res, i), RX_TASK_OK);
        }
    }
    assert_int_equal(pids[3], pids[0]);
    assert_int_not_equal(pids[4], pids[3]); /* put back: a new process */
    assert_int_equal(pids[12], pids[10]);
    assert_int_not_equal(pids[13], pids[12]);
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
}

/* The time limit is per task inside a chunk: three tasks of 0.4 s each pass a 1 s limit
 * together; the fourth, which hangs, ends TIMEOUT; the rest run after it. */
static void
check_timeout(submit_fn *sub, const char *name)
{
    chunk_case c;
    rx_context *ctx;
    rx_job *job;
    rx_results *res;
    int runs[MAX_TASKS];
    long pids[MAX_TASKS];

    skip_without_daemon();
    chunk_case_init(&c, name, 8, act_timeout, 8);
    c.opts.execution_timeout_s = 1.0;
    ctx = context();
    job = sub(ctx, &c.opts);
    res = wait_results(job, 120);
    read_log(c.log, runs, pids);
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(runs[i], 1);
        if (i == 3) {
            assert_int_equal(rx_results_state(res, i), RX_TASK_TIMEOUT);
            assert_non_null(strstr(rx_results_error(res, i), "time limit of 1 s exceeded"));
        } else {
            assert_int_equal(rx_results_state(res, i), RX_TASK_OK);
        }
    }
    assert_int_equal(pids[2], pids[0]); /* one process ran 1.2 s of tasks under a 1 s limit */
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
}

static void
test_chunk_timeout(void **state)
{
    (void)state;
    check_timeout(submit, "timeout");
}

/* The same with commands: each command's own limit, under one supervisor. */
static void
test_cmdchunk_timeout(void **state)
{
    (void)state;
    check_timeout(submit_cmd, "cmd_timeout");
}

/* A program that hangs after its last task (an atexit handler) is stopped by the time limit,
 * counted from that task's end; every task stays OK. */
static void
test_chunk_hang_after_last(void **state)
{
    chunk_case c;
    rx_context *ctx;
    rx_job *job;
    rx_results *res;
    int64_t t0 = now_ms();

    (void)state;
    skip_without_daemon();
    chunk_case_init(&c, "atexit", 3, act_atexit, 3);
    c.opts.execution_timeout_s = 1.0;
    ctx = context();
    job = submit(ctx, &c.opts);
    res = wait_results(job, 120);
    assert_true(now_ms() - t0 < 30000); /* not the handler's 120 s */
    assert_int_equal(rx_results_status(res), RX_JOB_FINISHED);
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
}

/* A task's output is its own whether the tasks before it said something or not (a chunk's
 * quiet tasks share one file until one speaks: registry.c chunk_out_end): a crash after quiet
 * tasks, and what the program says after its last task (that task's, as before chunks). */
static void
test_chunk_quiet_tasks(void **state)
{
    chunk_case c;
    rx_context *ctx;
    rx_job *job;
    rx_results *res;
    int runs[MAX_TASKS];
    long pids[MAX_TASKS];
    char *out;

    (void)state;
    skip_without_daemon();
    chunk_case_init(&c, "quiet", 12, act_quiet, 6);
    ctx = context();
    job = submit(ctx, &c.opts);
    assert_int_equal(rx_wait_for_job(job, 120), RX_OK);
    out = job_output(job);
    for (size_t i = 0; i < 12; i++) {
        char want[64], line[32];

        (void)snprintf(want, sizeof(want), "==> task %zu <==\nout %zu\nerr %zu\n%s", i, i, i,
                       i == 11 ? "bye\n" : "");
        (void)snprintf(line, sizeof(line), "out %zu\n", i);
        if (strcmp(act_quiet(i), "quiet") == 0 ? strstr(out, line) != NULL
                                               : strstr(out, want) == NULL)
            fail_msg("task %zu's output is not its own: %s", i, out);
    }
    {
        const char *tail = "==> task 11 <==\nout 11\nerr 11\n", *at = strstr(out, tail);

        if (at == NULL || strstr(out, "bye") != at + strlen(tail))
            fail_msg("'bye' is not the last task's alone: %s", out);
    }
    free(out);
    res = wait_results(job, 120);
    assert_int_equal(rx_results_status(res), RX_JOB_FAILED);
    read_log(c.log, runs, pids);
    for (size_t i = 0; i < 12; i++) {
        assert_int_equal(runs[i], 1);
        assert_int_equal(rx_results_state(res, i), i == 4 ? RX_TASK_SIGNALED : RX_TASK_OK);
    }
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
}

/* A task that points fd 1 and 2 elsewhere, closes them or removes its output file (saying
 * nothing) takes nothing from the tasks after it: their output is still their own. */
static void
test_chunk_task_moves_fds(void **state)
{
    chunk_case c;
    rx_context *ctx;
    rx_job *job;
    rx_results *res;
    char *out;

    (void)state;
    skip_without_daemon();
    chunk_case_init(&c, "fds", 9, act_fds, 9);
    ctx = context();
    job = submit(ctx, &c.opts);
    assert_int_equal(rx_wait_for_job(job, 120), RX_OK);
    out = job_output(job); /* before the results: getting them cleans the job up */
    res = wait_results(job, 120);
    for (size_t i = 0; i < 9; i++) {
        if (rx_results_state(res, i) != RX_TASK_OK)
            fail_msg("task %zu failed: %s", i,
                     rx_results_error(res, i) ? rx_results_error(res, i) : "");
    }
    assert_int_equal(rx_results_status(res), RX_JOB_FINISHED);
    for (size_t i = 0; i < 9; i++) {
        char want[64];

        if (strcmp(act_fds(i), "ok") != 0)
            continue;
        (void)snprintf(want, sizeof(want), "==> task %zu <==\nout %zu\nerr %zu\n", i, i, i);
        if (strstr(out, want) == NULL)
            fail_msg("task %zu's output is not its own: %s", i, out);
    }
    free(out);
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
}

static const char *
act_die(size_t i)
{
    return i == 2 ? "die" : "ok";
}

/* The program killed after the task's output file became t<i>.out and a fresh r<first>.out was
 * made, before it said the task ended (as a time limit or a cancel may): the task's output is
 * still its own, not the empty file of the next. */
static void
test_chunk_killed_after_output(void **state)
{
    chunk_case c;
    rx_context *ctx;
    rx_job *job;
    rx_results *res;
    char *out;

    (void)state;
    skip_without_daemon();
    chunk_case_init(&c, "die", 5, act_die, 5);
    c.opts.continue_on_failure = RX_TRUE;
    ctx = context();
    job = submit(ctx, &c.opts);
    assert_int_equal(rx_wait_for_job(job, 120), RX_OK);
    out = job_output(job);
    for (size_t i = 0; i < 5; i++) {
        char want[64];

        (void)snprintf(want, sizeof(want), "==> task %zu <==\nout %zu\nerr %zu\n", i, i, i);
        if (strstr(out, want) == NULL)
            fail_msg("task %zu's output is not its own: %s", i, out);
    }
    free(out);
    res = wait_results(job, 120);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(rx_results_state(res, i), i == 2 ? RX_TASK_SIGNALED : RX_TASK_OK);
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
}

/* Cancel mid-chunk: the task running is stopped, the rest never start; nothing runs twice and
 * the program is gone. */
static void
check_cancel(submit_fn *sub, const char *name)
{
    chunk_case c;
    rx_context *ctx;
    rx_job *job;
    int runs[MAX_TASKS], canceled = 0, n;
    long pids[MAX_TASKS];

    skip_without_daemon();
    chunk_case_init(&c, name, 10, act_slow, 10);
    ctx = context();
    job = sub(ctx, &c.opts);
    await_log(c.log, 2);
    assert_int_equal(rx_cancel_job(job, &canceled), RX_OK);
    assert_true(canceled);
    assert_int_equal(rx_wait_for_job(job, 60), RX_OK);
    assert_int_equal(rx_get_job_status(job), RX_JOB_CANCELED);
    n = log_lines(c.log);
    sleep_ms(1000);
    assert_int_equal(log_lines(c.log), n); /* nothing more started */
    assert_true(n < 10);
    read_log(c.log, runs, pids);
    for (size_t i = 0; i < 10; i++)
        assert_true(runs[i] <= 1);
    assert_false(process_alive((pid_t)pids[0]));
    rx_job_free(job);
    rx_context_free(ctx);
}

static void
test_chunk_cancel(void **state)
{
    (void)state;
    check_cancel(submit, "cancel");
}

/* The same with commands: the command running is stopped, its supervisor gone. */
static void
test_cmdchunk_cancel(void **state)
{
    (void)state;
    check_cancel(submit_cmd, "cmd_cancel");
}

/* kill -9 of rxjobd mid-chunk, then a new rxjobd: it adopts the chunk's supervisor, which went
 * on meanwhile; every task ends OK, each ran once. */
static void
check_kill9_adopt(submit_fn *sub, const char *name)
{
    chunk_case c;
    rx_context *ctx;
    rx_job *job;
    rx_results *res;
    int runs[MAX_TASKS];
    long pids[MAX_TASKS];

    skip_without_daemon();
    chunk_case_init(&c, name, 20, act_slow, 10);
    c.opts.num_tasks = 1;
    ctx = context();
    job = sub(ctx, &c.opts);
    await_log(c.log, 3);
    stop_daemon(daemon_pid, SIGKILL);
    daemon_pid = -1;
    sleep_ms(1500); /* the chunk goes on without a daemon */
    daemon_pid = start_daemon();
    assert_true(daemon_pid > 0);
    res = wait_results(job, 120);
    assert_int_equal(rx_results_status(res), RX_JOB_FINISHED);
    read_log(c.log, runs, pids);
    for (size_t i = 0; i < 20; i++) {
        assert_int_equal(rx_results_state(res, i), RX_TASK_OK);
        assert_int_equal(runs[i], 1);
    }
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
}

static void
test_chunk_kill9_adopt(void **state)
{
    (void)state;
    check_kill9_adopt(submit, "adopt");
}

/* The same with commands. */
static void
test_cmdchunk_kill9_adopt(void **state)
{
    (void)state;
    check_kill9_adopt(submit_cmd, "cmd_adopt");
}

/* kill -9 of rxjobd and of the chunk's supervisor mid-chunk: without its record nobody knows
 * which tasks of the chunk started, so all of them are LOST (none runs twice), the program left
 * running is killed, and the next chunk runs. */
static void
test_chunk_kill9_vanished(void **state)
{
    chunk_case c;
    rx_context *ctx;
    rx_job *job;
    rx_results *res;
    int runs[MAX_TASKS];
    long pids[MAX_TASKS];
    pid_t program, shim;

    (void)state;
    skip_without_daemon();
    chunk_case_init(&c, "vanish", 20, act_child, 10);
    c.opts.num_tasks = 1;
    ctx = context();
    job = submit(ctx, &c.opts);
    await_log(c.log, 2);
    read_log(c.log, runs, pids);
    program = (pid_t)pids[0];
    shim = parent_of(program);
    assert_true(shim > 1);
    stop_daemon(daemon_pid, SIGKILL);
    daemon_pid = -1;
    assert_int_equal(kill(shim, SIGKILL), 0);
    assert_false(process_alive(shim));
    daemon_pid = start_daemon();
    assert_true(daemon_pid > 0);
    res = wait_results(job, 120);
    assert_int_equal(rx_results_status(res), RX_JOB_FAILED);
    assert_false(process_alive(program)); /* the orphaned program was killed */
    {
        /* and task 0's child, which no dead pipe ends: only the daemon's kill can */
        char cpath[340];
        FILE *cf;
        long child = 0;

        (void)snprintf(cpath, sizeof(cpath), "%s.child", c.log);
        cf = fopen(cpath, "r");
        assert_non_null(cf);
        assert_int_equal(fscanf(cf, "%ld", &child), 1);
        fclose(cf);
        assert_true(child > 1);
        assert_false(process_alive((pid_t)child));
    }
    read_log(c.log, runs, pids);
    for (size_t i = 0; i < 20; i++) {
        if (i < 10) {
            assert_int_equal(rx_results_state(res, i), RX_TASK_LOST);
            assert_true(runs[i] <= 1);
        } else {
            assert_int_equal(rx_results_state(res, i), RX_TASK_OK);
            assert_int_equal(runs[i], 1);
        }
    }
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
}

/* ---------------------------------------------------------------------------------------------
 * Command tasks in chunks (task_chunk_size on command work, shim.c run_command_chunk): one
 * supervisor runs its chunk's commands one after the other, each its own process with its own
 * output, result, exit status and time limit.
 * ------------------------------------------------------------------------------------------- */

/* A command that fails mid-chunk: with continue_on_failure on, the chunk goes on (the same
 * supervisor runs the rest); off (num_tasks 1), nothing after it starts. */
static void
test_cmdchunk_fail(void **state)
{
    for (int stop = 0; stop <= 1; stop++) {
        chunk_case c;
        rx_context *ctx;
        rx_job *job;
        rx_results *res;
        int runs[MAX_TASKS];
        long pids[MAX_TASKS];

        (void)state;
        skip_without_daemon();
        chunk_case_init(&c, stop ? "cmd_fails" : "cmd_failc", 20, act_fail5, 10);
        if (stop) {
            c.opts.num_tasks = 1;
            c.opts.continue_on_failure = RX_FALSE;
        }
        ctx = context();
        job = submit_cmd(ctx, &c.opts);
        res = wait_results(job, 120);
        assert_int_equal(rx_results_status(res), RX_JOB_FAILED);
        read_log(c.log, runs, pids);
        for (size_t i = 0; i < 20; i++) {
            if (i == 5) {
                assert_int_equal(rx_results_state(res, i), RX_TASK_EXIT);
                assert_int_equal(rx_results_exit_status(res, i), 3);
            } else if (stop && i > 5) {
                assert_int_equal(rx_results_state(res, i), RX_TASK_NOT_RUN);
            } else {
                assert_int_equal(rx_results_state(res, i), RX_TASK_OK);
            }
            assert_int_equal(runs[i], stop && i > 5 ? 0 : 1);
            if (runs[i] > 0)
                assert_int_equal(pids[i], pids[i - i % 10]);
        }
        rx_results_free(res);
        rx_job_free(job);
        rx_context_free(ctx);
    }
}

static const char *
act_stubborn(size_t i)
{
    (void)i;
    return "stubborn";
}

/* A cancel that comes while a command's time limit is stopping it (the grace period between
 * SIGTERM, which it ignores, and SIGKILL) stops the chunk too: that command ends TIMEOUT, the
 * ones after it never start, and the supervisor is gone. (The supervisor read that cancel and
 * forgot it, its command being stopped already: the chunk went on with every command after,
 * each to its own time limit, and the job read RUNNING all that time.) */
static void
test_cmdchunk_cancel_in_grace(void **state)
{
    chunk_case c;
    rx_context *ctx;
    rx_job *job;
    int runs[MAX_TASKS], canceled = 0, n;
    long pids[MAX_TASKS];

    (void)state;
    skip_without_daemon();
    chunk_case_init(&c, "cmd_cancel_grace", 6, act_stubborn, 6);
    c.opts.execution_timeout_s = 1.0;
    ctx = context();
    job = submit_cmd(ctx, &c.opts);
    await_log(c.log, 1);
    /* Past the 1 s limit, in the middle of the 1 s grace (rxjobd's default --grace-ms). Earlier
     * or later (a slow machine), the cancel stops the command itself, or the next: the same
     * outcome but for that one's state. */
    sleep_ms(1500);
    assert_int_equal(rx_cancel_job(job, &canceled), RX_OK);
    assert_true(canceled);
    assert_int_equal(rx_wait_for_job(job, 60), RX_OK);
    assert_int_equal(rx_get_job_status(job), RX_JOB_CANCELED);
    read_log(c.log, runs, pids);
    assert_false(process_alive((pid_t)pids[0])); /* the supervisor */
    n = log_lines(c.log);
    sleep_ms(2500);
    assert_int_equal(log_lines(c.log), n); /* nothing more started */
    assert_true(n <= 2);
    for (size_t i = 0; i < 6; i++)
        assert_true(runs[i] <= 1);
    rx_job_free(job);
    rx_context_free(ctx);
}

static void
find_daemon(void)
{
    const char *env = getenv("RXJOB_TEST_DAEMON");
    char self[PATH_MAX];
    char *slash;

    daemon_path[0] = '\0';
    if (env != NULL && env[0] != '\0') {
        (void)snprintf(daemon_path, sizeof(daemon_path), "%s", env);
        return;
    }
    /* build/tests/test_chunk -> build/rxjobd */
    if (realpath("/proc/self/exe", self) == NULL)
        return;
    for (int up = 0; up < 2; up++) {
        slash = strrchr(self, '/');
        if (slash == NULL)
            return;
        *slash = '\0';
    }
    if (snprintf(daemon_path, sizeof(daemon_path), "%s/rxjobd", self) >= (int)sizeof(daemon_path) ||
        access(daemon_path, X_OK) != 0)
        daemon_path[0] = '\0';
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk_results_in_order),
        cmocka_unit_test(test_chunk_big_results),
        cmocka_unit_test(test_chunk_fail_continue),
        cmocka_unit_test(test_chunk_fail_stop),
        cmocka_unit_test(test_chunk_crash),
        cmocka_unit_test(test_chunk_protocol_broken),
        cmocka_unit_test(test_chunk_quiet_tasks),
        cmocka_unit_test(test_chunk_task_moves_fds),
        cmocka_unit_test(test_chunk_killed_after_output),
        cmocka_unit_test(test_chunk_timeout),
        cmocka_unit_test(test_chunk_hang_after_last),
        cmocka_unit_test(test_chunk_cancel),
        cmocka_unit_test(test_chunk_kill9_adopt),
        cmocka_unit_test(test_chunk_kill9_vanished),
        cmocka_unit_test(test_cmdchunk_results),
        cmocka_unit_test(test_cmdchunk_fail),
        cmocka_unit_test(test_cmdchunk_timeout),
        cmocka_unit_test(test_cmdchunk_cancel),
        cmocka_unit_test(test_cmdchunk_cancel_in_grace),
        cmocka_unit_test(test_cmdchunk_kill9_adopt),
        /* keep one per line */
    };
    char tmpl[] = "/tmp/rxjob-chunk-test-XXXXXX";
    int rc;

    /* When rxjobd started this program to run tasks, this runs them and exits. */
    rx_init(&argc, &argv);

    find_daemon();
    if (mkdtemp(tmpl) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    (void)snprintf(tmpdir, sizeof(tmpdir), "%s", tmpl);
    (void)snprintf(url, sizeof(url), "unix:%s/d.sock", tmpdir);
    if (daemon_path[0] != '\0')
        daemon_pid = start_daemon();
    if (daemon_pid <= 0)
        fprintf(stderr, "test_chunk: no rxjobd to test against (set RXJOB_TEST_DAEMON): "
                        "skipping\n");
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    stop_daemon(daemon_pid, SIGTERM);
    if (rc == 0) {
        pid_t pid = fork();

        if (pid == 0) {
            execlp("rm", "rm", "-rf", tmpdir, (char *)NULL);
            _exit(127);
        }
        if (pid > 0)
            waitpid(pid, NULL, 0);
    } else {
        fprintf(stderr, "test_chunk: left %s for a look\n", tmpdir);
    }
    return rc;
}
