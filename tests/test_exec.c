/*
 * test_exec.c - rx_exec on the local and local-parallel contexts, with real processes.
 *
 * Every test runs real work: C functions in forked workers (or in this process for the local
 * context) and real commands. This binary is also its own command: run with --write-argv it
 * writes its arguments, each followed by a NUL, to $RXJOB_RESULT, so a test can check what
 * reached argv byte for byte.
 */
#define _GNU_SOURCE
#include "rxjob.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs the declarations of the headers above. */
#include <cmocka.h>

static char self_exe[4096];
static char scratch[4096]; /* a private directory for files the tasks write */

static int64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void
scratch_path(char *buf, size_t len, const char *name)
{
    (void)snprintf(buf, len, "%s/%s", scratch, name);
}

static int
count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own fd */
}

static long
rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    }
    fclose(f);
    return kib;
}

/* 1 if a live (not zombie) process is in group pgid, after up to 1 s for SIGKILL to land. */
static int
group_alive(pid_t pgid)
{
    for (int tries = 0; tries < 100; tries++) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        int alive = 0;

        assert_non_null(d);
        while ((e = readdir(d)) != NULL && !alive) {
            char path[300], buf[1024];
            FILE *f;
            char *p;
            char st;
            int ppid, pgrp;

            if (e->d_name[0] < '1' || e->d_name[0] > '9')
                continue;
            (void)snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
            f = fopen(path, "r");
            if (f == NULL)
                continue;
            p = fgets(buf, sizeof(buf), f);
            fclose(f);
            if (p == NULL || (p = strrchr(buf, ')')) == NULL)
                continue;
            if (sscanf(p + 1, " %c %d %d", &st, &ppid, &pgrp) == 3 && pgrp == pgid && st != 'Z')
                alive = 1;
        }
        closedir(d);
        if (!alive)
            return 0;
        sleep_ms(10);
    }
    return 1;
}

static void
assert_no_children(void)
{
    int st;

    assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static rx_context *
parallel(unsigned n)
{
    rx_context *ctx = NULL;

    assert_int_equal(rx_local_parallel_context(n, &ctx), RX_OK);
    return ctx;
}

static rx_context *
local(void)
{
    rx_context *ctx = NULL;

    assert_int_equal(rx_local_context(&ctx), RX_OK);
    return ctx;
}

/* ---------------------------------------------------------------------------------------------
 * Functions the tasks run
 * ------------------------------------------------------------------------------------------- */

/* Sleeps longer for earlier tasks, so later ones finish first; fails at index 13. */
static int
fn_fail13(rx_task *t)
{
    size_t i = rx_task_index(t);
    char buf[64];
    char path[4200];
    FILE *f;

    scratch_path(path, sizeof(path), "starts");
    f = fopen(path, "a");
    if (f != NULL) {
        fprintf(f, "start %zu %lld\n", i, (long long)now_us());
        fclose(f);
    }
    sleep_ms((long)(20 - i) * 3);
    if (i == 13) {
        f = fopen(path, "a");
        if (f != NULL) {
            fprintf(f, "fail %zu %lld\n", i, (long long)now_us());
            fclose(f);
        }
        return rx_task_fail(t, "task %zu refuses: unlucky number", i);
    }
    (void)snprintf(buf, sizeof(buf), "value %zu", i);
    return rx_task_set_result_str(t, buf) == RX_OK ? 0 : -1;
}

static int
fn_sleep_1s(rx_task *t)
{
    char buf[64];
    int64_t start = now_us();

    sleep_ms(1000);
    (void)snprintf(buf, sizeof(buf), "%lld %lld", (long long)start, (long long)now_us());
    return rx_task_set_result_str(t, buf) == RX_OK ? 0 : -1;
}

/* Records its process group, starts a child in it, then sleeps past any limit. */
static int
fn_hang_with_child(rx_task *t)
{
    char path[4200];
    FILE *f;

    (void)t;
    if (fork() == 0) {
        sleep_ms(60000);
        _exit(0);
    }
    scratch_path(path, sizeof(path), "pgid");
    f = fopen(path, "w");
    if (f != NULL) {
        fprintf(f, "%d\n", (int)getpgrp());
        fclose(f);
    }
    sleep_ms(60000);
    return 0;
}

static int
fn_print(rx_task *t)
{
    size_t i = rx_task_index(t);

    printf("out %zu\n", i);
    fflush(stdout);
    fprintf(stderr, "err %zu\n", i);
    return rx_task_set_result_str(t, "ok") == RX_OK ? 0 : -1;
}

static int
fn_echo_arg(rx_task *t)
{
    size_t len;
    const void *arg = rx_task_arg(t, &len);

    return rx_task_set_result(t, arg, len) == RX_OK ? 0 : -1;
}

static int
fn_crash_at_2(rx_task *t)
{
    if (rx_task_index(t) == 2)
        raise(SIGSEGV);
    return rx_task_set_result_str(t, "fine") == RX_OK ? 0 : -1;
}

static int
fn_count(rx_task *t)
{
    char path[4200];
    FILE *f;

    (void)t;
    scratch_path(path, sizeof(path), "ran");
    f = fopen(path, "a");
    if (f != NULL) {
        fputs("x\n", f);
        fclose(f);
    }
    return 0;
}

static int
fn_big_output(rx_task *t)
{
    static char block[1 << 16];

    (void)t;
    memset(block, 'z', sizeof(block));
    for (int i = 0; i < 100000000 / (int)sizeof(block); i++)
        fwrite(block, 1, sizeof(block), stdout);
    fwrite(block, 1, 100000000 % sizeof(block), stdout);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Failures: continue_on_failure true and false
 * ------------------------------------------------------------------------------------------- */

static void
check_20_with_13_failed(rx_results *res)
{
    assert_int_equal(rx_results_count(res), 20);
    assert_int_equal(rx_results_status(res), RX_JOB_FAILED);
    assert_int_equal(rx_results_failed(res), 1);
    for (size_t i = 0; i < 20; i++) {
        char want[64];
        size_t len = 0;

        if (i == 13) {
            assert_int_equal(rx_results_state(res, i), RX_TASK_ERROR);
            assert_null(rx_results_value(res, i, &len));
            assert_string_equal(rx_results_error(res, i), "task 13 refuses: unlucky number");
            continue;
        }
        (void)snprintf(want, sizeof(want), "value %zu", i);
        assert_int_equal(rx_results_state(res, i), RX_TASK_OK);
        assert_null(rx_results_error(res, i));
        assert_string_equal(rx_results_value(res, i, &len), want);
        assert_int_equal(len, strlen(want));
    }
}

static void
test_exec_continue_on_failure(void **state)
{
    rx_context *ctxs[2] = {parallel(2), local()};

    (void)state;
    for (int c = 0; c < 2; c++) {
        rx_work w = rx_work_function(fn_fail13);
        rx_exec_opts o = RX_EXEC_OPTS_INIT;
        rx_results *res = NULL;

        o.times_to_run = 20;
        o.task_chunk_size = 1;
        assert_int_equal(rx_exec(ctxs[c], &w, &o, &res, NULL), RX_EJOBFAILED);
        check_20_with_13_failed(res);
        rx_results_free(res);
        rx_context_free(ctxs[c]);
    }
    assert_no_children();
}

/* With continue_on_failure false, no task starts after the failing one reported. */
static void
test_exec_stop_on_failure(void **state)
{
    rx_context *ctxs[2] = {parallel(2), local()};

    (void)state;
    for (int c = 0; c < 2; c++) {
        rx_work w = rx_work_function(fn_fail13);
        rx_exec_opts o = RX_EXEC_OPTS_INIT;
        rx_results *res = NULL;
        char path[4200], line[128];
        long long fail_us = -1, last_start_us = -1;
        size_t not_run = 0;
        FILE *f;

        scratch_path(path, sizeof(path), "starts");
        (void)unlink(path);
        o.times_to_run = 20;
        o.continue_on_failure = RX_FALSE;
        assert_int_equal(rx_exec(ctxs[c], &w, &o, &res, NULL), RX_EJOBFAILED);
        assert_int_equal(rx_results_status(res), RX_JOB_FAILED);
        assert_int_equal(rx_results_state(res, 13), RX_TASK_ERROR);
        for (size_t i = 0; i < 20; i++) {
            rx_task_state s = rx_results_state(res, i);

            if (s == RX_TASK_NOT_RUN) {
                not_run++;
                assert_non_null(strstr(rx_results_error(res, i), "not run"));
            } else if (s == RX_TASK_STOPPED) {
                assert_non_null(strstr(rx_results_error(res, i), "stopped"));
            } else if (i != 13) {
                assert_int_equal(s, RX_TASK_OK);
            }
        }
        /* In parallel, how many never ran depends on how the two workers were scheduled (under
         * load one may finish every other task before 13 fails): what must hold is that no task
         * started after the failure, checked below from the tasks' own stamps. */
        if (c == 1) { /* sequential: exactly the tasks after 13 never ran */
            assert_int_equal(not_run, 6);
            for (size_t i = 0; i < 13; i++)
                assert_int_equal(rx_results_state(res, i), RX_TASK_OK);
        }
        f = fopen(path, "r");
        assert_non_null(f);
        while (fgets(line, sizeof(line), f) != NULL) {
            size_t idx;
            long long t;

            if (sscanf(line, "start %zu %lld", &idx, &t) == 2 && t > last_start_us)
                last_start_us = t;
            if (sscanf(line, "fail %zu %lld", &idx, &t) == 2)
                fail_us = t;
        }
        fclose(f);
        assert_true(fail_us > 0);
        assert_true(last_start_us < fail_us);
        rx_results_free(res);
        rx_context_free(ctxs[c]);
    }
    assert_no_children();
}

/* ---------------------------------------------------------------------------------------------
 * Submit-time checks: nothing runs
 * ------------------------------------------------------------------------------------------- */

static void
test_exec_count_mismatch(void **state)
{
    rx_context *ctx = parallel(2);
    rx_work w = rx_work_function(fn_count);
    rx_buf args[3] = {{"a", 1}, {"b", 1}, {"c", 1}};
    rx_exec_opts o = RX_EXEC_OPTS_INIT;
    rx_results *res = NULL;
    char path[4200];

    (void)state;
    scratch_path(path, sizeof(path), "ran");
    (void)unlink(path);
    o.elem_args = args;
    o.n_elem_args = 3;
    o.times_to_run = 5;
    assert_int_equal(rx_exec(ctx, &w, &o, &res, NULL), RX_ECOUNT);
    assert_null(res);
    assert_non_null(strstr(rx_context_errmsg(ctx), "times_to_run"));
    assert_int_equal(access(path, F_OK), -1); /* no task ran */

    o.times_to_run = 3; /* agreeing is fine */
    assert_int_equal(rx_exec(ctx, &w, &o, &res, NULL), RX_OK);
    assert_int_equal(rx_results_count(res), 3);
    rx_results_free(res);
    rx_context_free(ctx);
}

static void
test_exec_bad_input(void **state)
{
    rx_context *ctx = parallel(2);
    rx_work fw = rx_work_function(fn_count);
    rx_work nofn = rx_work_function(NULL);
    const char *empty_argv[] = {NULL};
    rx_work noargv = rx_work_command(empty_argv);
    rx_exec_opts o = RX_EXEC_OPTS_INIT;
    rx_results *res = NULL;

    (void)state;
    assert_int_equal(rx_exec(NULL, &fw, NULL, &res, NULL), RX_EINVAL);
    assert_int_equal(rx_exec(ctx, NULL, NULL, &res, NULL), RX_EINVAL);
    assert_int_equal(rx_exec(ctx, &fw, NULL, NULL, NULL), RX_EINVAL);
    assert_int_equal(rx_exec(ctx, &nofn, NULL, &res, NULL), RX_EINVAL);
    assert_int_equal(rx_exec(ctx, &noargv, NULL, &res, NULL), RX_EINVAL);
    o.times_to_run = 0;
    assert_int_equal(rx_exec(ctx, &fw, &o, &res, NULL), RX_EINVAL);
    o.times_to_run = -2;
    assert_int_equal(rx_exec(ctx, &fw, &o, &res, NULL), RX_EINVAL);
    o.times_to_run = 1;
    o.execution_timeout_s = -1;
    assert_int_equal(rx_exec(ctx, &fw, &o, &res, NULL), RX_EINVAL);
    o.execution_timeout_s = 0;
    o.console_output = (rx_tristate)7;
    assert_int_equal(rx_exec(ctx, &fw, &o, &res, NULL), RX_EINVAL);
    assert_null(res);
    assert_int_equal(rx_local_parallel_context(RX_MAX_WORKERS + 1, &ctx), RX_EINVAL);
    rx_context_free(ctx);
}

/* ---------------------------------------------------------------------------------------------
 * Parallelism: overlap on local-parallel, none on local
 * ------------------------------------------------------------------------------------------- */

static void
run_4_sleepers(rx_context *ctx, double *out_wall_s, int *out_overlaps)
{
    rx_work w = rx_work_function(fn_sleep_1s);
    rx_exec_opts o = RX_EXEC_OPTS_INIT;
    rx_results *res = NULL;
    long long s[4], e[4];
    int64_t t0 = now_us();

    o.times_to_run = 4;
    assert_int_equal(rx_exec(ctx, &w, &o, &res, NULL), RX_OK);
    *out_wall_s = (double)(now_us() - t0) / 1e6;
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(sscanf(rx_results_value(res, i, NULL), "%lld %lld", &s[i], &e[i]), 2);
    *out_overlaps = 0;
    for (int i = 0; i < 4; i++) {
        for (int j = i + 1; j < 4; j++)
            *out_overlaps += s[i] < e[j] && s[j] < e[i];
    }
    rx_results_free(res);
}

static void
test_exec_parallel_overlap(void **state)
{
    rx_context *par = parallel(2), *seq = local();
    double wall;
    int overlaps;

    (void)state;
    run_4_sleepers(par, &wall, &overlaps);
    assert_true(wall >= 1.95 && wall < 2.8);
    assert_true(overlaps >= 2);
    run_4_sleepers(seq, &wall, &overlaps);
    assert_true(wall >= 3.95 && wall < 5.0);
    assert_int_equal(overlaps, 0);
    rx_context_free(par);
    rx_context_free(seq);
}

/* ---------------------------------------------------------------------------------------------
 * Time limits
 * ------------------------------------------------------------------------------------------- */

static pid_t
read_pgid(void)
{
    char path[4200];
    FILE *f;
    int pgid = 0;

    scratch_path(path, sizeof(path), "pgid");
    f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%d", &pgid), 1);
    fclose(f);
    (void)unlink(path);
    return (pid_t)pgid;
}

static void
check_timed_out(rx_results *res, int64_t t0, double limit_s)
{
    double wall = (double)(now_us() - t0) / 1e6;

    assert_int_equal(rx_results_state(res, 0), RX_TASK_TIMEOUT);
    assert_non_null(strstr(rx_results_error(res, 0), "time limit"));
    assert_true(wall >= limit_s && wall < limit_s + 1.0);
    assert_true(rx_results_elapsed_s(res, 0) >= limit_s - 0.05);
}

static void
test_exec_time_limit(void **state)
{
    rx_context *ctxs[2] = {parallel(2), local()};
    char pgid_path[4200], script[4400];

    (void)state;
    scratch_path(pgid_path, sizeof(pgid_path), "pgid");
    for (int c = 0; c < 2; c++) {
        rx_work w = rx_work_function(fn_hang_with_child);
        rx_exec_opts o = RX_EXEC_OPTS_INIT;
        rx_results *res = NULL;
        int64_t t0 = now_us();
        pid_t pgid;

        o.execution_timeout_s = 1.0;
        assert_int_equal(rx_exec(ctxs[c], &w, &o, &res, NULL), RX_EJOBFAILED);
        check_timed_out(res, t0, 1.0);
        pgid = read_pgid();
        assert_true(pgid > 1);
        assert_false(group_alive(pgid)); /* nothing of its group is left */
        rx_results_free(res);
    }
    /* A command that ignores SIGTERM and leaves a child: gone after the grace period. */
    (void)snprintf(script, sizeof(script),
                   "trap '' TERM; echo $$ > '%s'; sleep 60 & sleep 60; wait", pgid_path);
    {
        const char *argv[] = {"sh", "-c", script, NULL};
        rx_work w = rx_work_command(argv);
        rx_exec_opts o = RX_EXEC_OPTS_INIT;
        rx_results *res = NULL;
        int64_t t0 = now_us();
        pid_t pgid;

        o.execution_timeout_s = 0.5;
        assert_int_equal(rx_exec(ctxs[0], &w, &o, &res, NULL), RX_EJOBFAILED);
        /* SIGTERM is ignored, so SIGKILL ends it after the 1 s grace period. */
        assert_int_equal(rx_results_state(res, 0), RX_TASK_TIMEOUT);
        assert_true((double)(now_us() - t0) / 1e6 < 0.5 + 1.0 + 0.5);
        assert_int_equal(rx_results_signal(res, 0), SIGKILL);
        pgid = read_pgid();
        assert_false(group_alive(pgid));
        rx_results_free(res);
    }
    rx_context_free(ctxs[0]);
    rx_context_free(ctxs[1]);
    assert_no_children();
}

/* ---------------------------------------------------------------------------------------------
 * Console output
 * ------------------------------------------------------------------------------------------- */

static char *
all_output(const rx_results *res, size_t *out_len)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    assert_int_equal(rx_results_write_all_output(res, f), RX_OK);
    fclose(f);
    *out_len = len;
    return buf;
}

static void
test_exec_console_output(void **state)
{
    rx_context *ctxs[2] = {parallel(2), local()};
    const char *argv[] = {"sh", "-c", "echo out $RXJOB_TASK_INDEX; echo err $RXJOB_TASK_INDEX >&2",
                          NULL};
    char want[4096];
    size_t wlen = 0;

    (void)state;
    for (size_t i = 0; i < 6; i++)
        wlen += (size_t)snprintf(want + wlen, sizeof(want) - wlen,
                                 "==> task %zu <==\nout %zu\nerr %zu\n", i, i, i);
    for (int c = 0; c < 2; c++) {
        for (int kind = 0; kind < 2; kind++) {
            rx_work w = kind == 0 ? rx_work_function(fn_print) : rx_work_command(argv);
            rx_exec_opts o = RX_EXEC_OPTS_INIT;
            rx_results *res = NULL;
            size_t len;
            char *got;

            o.times_to_run = 6;
            assert_int_equal(rx_exec(ctxs[c], &w, &o, &res, NULL), RX_OK);
            got = all_output(res, &len);
            assert_int_equal(len, wlen);
            assert_memory_equal(got, want, wlen);
            assert_int_equal(rx_results_output_size(res, 3), strlen("out 3\nerr 3\n"));
            free(got);
            rx_results_free(res);
        }
    }
    rx_context_free(ctxs[0]);
    rx_context_free(ctxs[1]);
}

/* 100 MB of output goes to the spool, never into the caller's memory. */
static void
test_exec_big_output_bounded_memory(void **state)
{
    rx_context *ctx = parallel(2);
    const char *argv[] = {"head", "-c", "100000000", "/dev/zero", NULL};
    rx_work works[2] = {rx_work_function(fn_big_output), rx_work_command(argv)};
    FILE *null_out = fopen("/dev/null", "w");

    (void)state;
    assert_non_null(null_out);
    for (int k = 0; k < 2; k++) {
        rx_exec_opts o = RX_EXEC_OPTS_INIT;
        rx_results *res = NULL;
        long before = rss_kib(), after;

        assert_int_equal(rx_exec(ctx, &works[k], &o, &res, NULL), RX_OK);
        assert_int_equal(rx_results_output_size(res, 0), 100000000);
        assert_int_equal(rx_results_write_output(res, 0, null_out), RX_OK);
        after = rss_kib();
        assert_true(after - before < 4 * 1024);
        rx_results_free(res);
    }
    fclose(null_out);
    rx_context_free(ctx);
}

/* ---------------------------------------------------------------------------------------------
 * Commands: argv byte-exact, failures
 * ------------------------------------------------------------------------------------------- */

static const rx_buf nasty_args[] = {
    {"two words", 9},
    {"it's \"quoted\"", 13},
    {"$(touch /tmp/rxjob-pwned)", 25},
    {"line1\nline2", 11},
    {"-n", 2},
    {"\xff\xfe bad utf-8 \xc3", 14},
    {"", 0},
    {"{}", 2},
    {"*", 1},
};

static void
check_argv_result(rx_results *res, size_t i, const char *const *want, size_t n_want)
{
    size_t len = 0, pos = 0;
    const char *got = rx_results_value(res, i, &len);

    assert_non_null(got);
    for (size_t k = 0; k < n_want; k++) {
        size_t wl = strlen(want[k]);

        assert_true(pos + wl < len + 1);
        assert_memory_equal(got + pos, want[k], wl);
        assert_int_equal(got[pos + wl], '\0');
        pos += wl + 1;
    }
    assert_int_equal(pos, len);
}

static void
test_exec_command_argv_exact(void **state)
{
    rx_context *ctx = parallel(2);
    size_t n = sizeof(nasty_args) / sizeof(nasty_args[0]);
    /* "{}" replaced inside an element, and a second element with text around it */
    const char *argv1[] = {self_exe, "--write-argv", "{}", "<{}>", NULL};
    /* no "{}": the argument is appended, as GNU parallel does */
    const char *argv2[] = {self_exe, "--write-argv", NULL};
    const char *const *argvs[2] = {argv1, argv2};

    (void)state;
    for (int a = 0; a < 2; a++) {
        rx_work w = rx_work_command(argvs[a]);
        rx_exec_opts o = RX_EXEC_OPTS_INIT;
        rx_results *res = NULL;

        o.elem_args = nasty_args;
        o.n_elem_args = n;
        assert_int_equal(rx_exec(ctx, &w, &o, &res, NULL), RX_OK);
        for (size_t i = 0; i < n; i++) {
            char arg[64], wrapped[80];
            const char *want[4];

            memcpy(arg, nasty_args[i].data, nasty_args[i].len);
            arg[nasty_args[i].len] = '\0';
            (void)snprintf(wrapped, sizeof(wrapped), "<%s>", arg);
            want[0] = self_exe;
            want[1] = "--write-argv";
            want[2] = arg;
            want[3] = wrapped;
            check_argv_result(res, i, want, a == 0 ? 4 : 3);
        }
        rx_results_free(res);
    }
    assert_int_equal(access("/tmp/rxjob-pwned", F_OK), -1);
    rx_context_free(ctx);
}

static void
test_exec_command_failures(void **state)
{
    rx_context *ctx = parallel(2);
    const char *nosuch[] = {"rxjob-no-such-command-xyz", NULL};
    const char *shell_line[] = {"echo hi", NULL};
    const char *exit3[] = {"sh", "-c", "exit 3", NULL};
    const char *killed[] = {"sh", "-c", "kill -9 $$", NULL};
    rx_results *res = NULL;
    rx_work w;

    (void)state;
    w = rx_work_command(nosuch);
    assert_int_equal(rx_exec(ctx, &w, NULL, &res, NULL), RX_EJOBFAILED);
    assert_int_equal(rx_results_state(res, 0), RX_TASK_START_FAILED);
    assert_string_equal(rx_results_error(res, 0), "command not found: 'rxjob-no-such-command-xyz'");
    rx_results_free(res);

    /* A shell line given as the program: no shell runs it, and the error says so. */
    w = rx_work_command(shell_line);
    assert_int_equal(rx_exec(ctx, &w, NULL, &res, NULL), RX_EJOBFAILED);
    assert_int_equal(rx_results_state(res, 0), RX_TASK_START_FAILED);
    assert_string_equal(rx_results_error(res, 0),
                        "command not found: 'echo hi' (no shell runs a command: this whole string "
                        "was taken as one program's name; for a shell line, run sh -c 'LINE')");
    rx_results_free(res);

    w = rx_work_command(exit3);
    assert_int_equal(rx_exec(ctx, &w, NULL, &res, NULL), RX_EJOBFAILED);
    assert_int_equal(rx_results_state(res, 0), RX_TASK_EXIT);
    assert_int_equal(rx_results_exit_status(res, 0), 3);
    assert_string_equal(rx_results_error(res, 0), "exit status 3");
    rx_results_free(res);

    w = rx_work_command(killed);
    assert_int_equal(rx_exec(ctx, &w, NULL, &res, NULL), RX_EJOBFAILED);
    assert_int_equal(rx_results_state(res, 0), RX_TASK_SIGNALED);
    assert_int_equal(rx_results_signal(res, 0), SIGKILL);
    assert_string_equal(rx_results_error(res, 0), "killed by signal 9 (SIGKILL)");
    rx_results_free(res);
    rx_context_free(ctx);
}

static void
test_exec_command_env_cwd_stdin(void **state)
{
    rx_context *ctx = local();
    const char *argv[] = {"sh", "-c", "{ pwd; echo \"$GREETING\"; cat; } > \"$RXJOB_RESULT\"",
                          NULL};
    const char *env[] = {"GREETING=hello there", NULL};
    rx_work w = rx_work_command(argv);
    rx_results *res = NULL;
    char want[4200];

    (void)state;
    w.env = env;
    w.cwd = scratch;
    w.stdin_data = "from stdin\n";
    w.stdin_len = 11;
    assert_int_equal(rx_exec(ctx, &w, NULL, &res, NULL), RX_OK);
    (void)snprintf(want, sizeof(want), "%s\nhello there\nfrom stdin\n", scratch);
    assert_string_equal(rx_results_value(res, 0, NULL), want);
    rx_results_free(res);
    rx_context_free(ctx);
}

/* ---------------------------------------------------------------------------------------------
 * Workers: crashes, arguments, callbacks, resources
 * ------------------------------------------------------------------------------------------- */

static void
test_exec_worker_crash(void **state)
{
    rx_context *ctx = parallel(2);
    rx_work w = rx_work_function(fn_crash_at_2);
    rx_exec_opts o = RX_EXEC_OPTS_INIT;
    rx_results *res = NULL;

    (void)state;
    o.times_to_run = 8;
    o.task_chunk_size = 8; /* one worker runs all; it dies at task 2 */
    assert_int_equal(rx_exec(ctx, &w, &o, &res, NULL), RX_EJOBFAILED);
    for (size_t i = 0; i < 8; i++) {
        if (i == 2) {
            assert_int_equal(rx_results_state(res, i), RX_TASK_SIGNALED);
            assert_int_equal(rx_results_signal(res, i), SIGSEGV);
            assert_non_null(strstr(rx_results_error(res, i), "SIGSEGV"));
        } else {
            assert_int_equal(rx_results_state(res, i), RX_TASK_OK);
        }
    }
    rx_results_free(res);
    rx_context_free(ctx);
    assert_no_children();
}

static void
record_order(const rx_results *res, size_t index, void *user)
{
    size_t *seen = user;

    assert_true(rx_results_state(res, index) != RX_TASK_NOT_RUN || index == 13);
    seen[seen[0] + 1] = index;
    seen[0]++;
}

static void
test_exec_callback_in_task_order(void **state)
{
    rx_context *ctx = parallel(2);
    rx_work w = rx_work_function(fn_fail13);
    rx_exec_opts o = RX_EXEC_OPTS_INIT;
    rx_results *res = NULL;
    size_t seen[21] = {0};

    (void)state;
    o.times_to_run = 20;
    o.task_chunk_size = 1;
    o.callback = record_order;
    o.callback_user = seen;
    assert_int_equal(rx_exec(ctx, &w, &o, &res, NULL), RX_EJOBFAILED);
    assert_int_equal(seen[0], 20);
    for (size_t i = 0; i < 20; i++)
        assert_int_equal(seen[i + 1], i);
    rx_results_free(res);
    rx_context_free(ctx);
}

static void
test_exec_binary_args_to_functions(void **state)
{
    rx_context *ctxs[2] = {parallel(2), local()};
    const rx_buf args[] = {{"a\0b", 3}, {"", 0}, {"\xff\x00\x01", 3}};

    (void)state;
    for (int c = 0; c < 2; c++) {
        rx_work w = rx_work_function(fn_echo_arg);
        rx_exec_opts o = RX_EXEC_OPTS_INIT;
        rx_results *res = NULL;

        o.elem_args = args;
        o.n_elem_args = 3;
        assert_int_equal(rx_exec(ctxs[c], &w, &o, &res, NULL), RX_OK);
        for (size_t i = 0; i < 3; i++) {
            size_t len;
            const void *v = rx_results_value(res, i, &len);

            assert_int_equal(len, args[i].len);
            assert_memory_equal(v, args[i].data, len);
        }
        rx_results_free(res);
        rx_context_free(ctxs[c]);
    }
}

/* 1 000 tasks of each kind leave no zombie and no open file descriptor behind. */
static void
test_exec_no_leaks_1000(void **state)
{
    rx_context *ctx = parallel(2);
    const char *argv[] = {"true", NULL};
    rx_work works[2] = {rx_work_command(argv), rx_work_function(fn_echo_arg)};
    int fds_before = count_open_fds();

    (void)state;
    for (int k = 0; k < 2; k++) {
        rx_exec_opts o = RX_EXEC_OPTS_INIT;
        rx_results *res = NULL;

        o.times_to_run = 1000;
        o.task_chunk_size = 1; /* a process per task for functions too */
        assert_int_equal(rx_exec(ctx, &works[k], &o, &res, NULL), RX_OK);
        assert_int_equal(rx_results_count(res), 1000);
        assert_int_equal(rx_results_failed(res), 0);
        rx_results_free(res);
        assert_no_children();
        assert_int_equal(count_open_fds(), fds_before);
    }
    rx_context_free(ctx);
}

/* Freeing the results removes their spool. */
static void
test_exec_spool_removed(void **state)
{
    rx_context *ctx = parallel(2);
    rx_work w = rx_work_function(fn_print);
    rx_exec_opts o = RX_EXEC_OPTS_INIT;
    rx_results *res = NULL;
    DIR *d;
    struct dirent *e;
    int entries = 0;

    (void)state;
    o.times_to_run = 10;
    assert_int_equal(rx_exec(ctx, &w, &o, &res, NULL), RX_OK);
    rx_results_free(res);
    d = opendir(getenv("TMPDIR"));
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        entries += strncmp(e->d_name, "rxjob-", 6) == 0;
    closedir(d);
    assert_int_equal(entries, 0);
    rx_context_free(ctx);
}

/* ---------------------------------------------------------------------------------------------
 * Regressions: each found by trying to break rx_exec; each failed before its fix
 * ------------------------------------------------------------------------------------------- */

/* A caller that ignores SIGCHLD (the kernel then discards exit statuses) can still run jobs. */
static void
test_exec_sigchld_ignored(void **state)
{
    rx_context *ctx = parallel(2);
    const char *argv[] = {"sh", "-c", "exit 4", NULL};
    rx_work works[2] = {rx_work_command(argv), rx_work_function(fn_echo_arg)};
    struct sigaction ign, old;

    (void)state;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    assert_int_equal(sigaction(SIGCHLD, &ign, &old), 0);
    for (int k = 0; k < 2; k++) {
        rx_exec_opts o = RX_EXEC_OPTS_INIT;
        rx_results *res = NULL;

        o.times_to_run = 3;
        assert_int_equal(rx_exec(ctx, &works[k], &o, &res, NULL), k == 0 ? RX_EJOBFAILED : RX_OK);
        if (k == 0)
            assert_int_equal(rx_results_exit_status(res, 2), 4);
        rx_results_free(res);
    }
    assert_int_equal(sigaction(SIGCHLD, NULL, &ign), 0);
    assert_true(ign.sa_handler == SIG_IGN); /* the caller's setting is back */
    assert_int_equal(sigaction(SIGCHLD, &old, NULL), 0);
    rx_context_free(ctx);
}

/* $RXJOB_RESULT made a FIFO, a symlink or a directory: the task fails; nothing hangs, and the
 * spool (with the directory in it) is still removed. */
static void
test_exec_result_not_a_file(void **state)
{
    rx_context *ctx = parallel(2);
    const char *scripts[] = {"mkfifo \"$RXJOB_RESULT\"", "ln -s /etc/passwd \"$RXJOB_RESULT\"",
                             "mkdir \"$RXJOB_RESULT\" && mkdir \"$RXJOB_RESULT.d\""};

    (void)state;
    for (size_t k = 0; k < 3; k++) {
        const char *argv[] = {"sh", "-c", scripts[k], NULL};
        rx_work w = rx_work_command(argv);
        rx_results *res = NULL;

        assert_int_equal(rx_exec(ctx, &w, NULL, &res, NULL), RX_EJOBFAILED);
        assert_int_equal(rx_results_state(res, 0), RX_TASK_ERROR);
        assert_non_null(strstr(rx_results_error(res, 0), "not a regular file"));
        rx_results_free(res);
    }
    rx_context_free(ctx);
}

/* A caller running with stdin, stdout and stderr closed still gets every task's output. */
static void
test_exec_caller_stdio_closed(void **state)
{
    const char *argv[] = {"sh", "-c", "echo cmd", NULL};
    rx_work works[2] = {rx_work_command(argv), rx_work_function(fn_print)};
    pid_t pid;
    int st;

    (void)state;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* in a child: this process's own stdio must stay */
        rx_context *ctx = NULL;
        int bad = 0;

        close(0);
        close(1);
        close(2);
        if (rx_local_parallel_context(2, &ctx) != RX_OK)
            _exit(10);
        for (int k = 0; k < 2; k++) {
            rx_results *res = NULL;

            if (rx_exec(ctx, &works[k], NULL, &res, NULL) != RX_OK)
                _exit(11 + k);
            bad |= rx_results_output_size(res, 0) != (k == 0 ? 4u : 12u);
            rx_results_free(res);
        }
        rx_context_free(ctx);
        _exit(bad ? 20 : 0);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static int
fn_result_8mb(rx_task *t)
{
    static char big[8 << 20];

    return rx_task_set_result(t, big, sizeof(big)) == RX_OK ? 0 : -1;
}

static void
sleep_on_first(const rx_results *res, size_t index, void *user)
{
    (void)res;
    (void)user;
    if (index == 0)
        sleep_ms(1500); /* the parent reads no pipe meanwhile: task 1's report is stuck */
}

/* Sending a big result back is not part of the task's time limit. */
static void
test_exec_result_transfer_not_timed(void **state)
{
    rx_context *ctx = parallel(2);
    rx_work w = rx_work_function(fn_result_8mb);
    rx_exec_opts o = RX_EXEC_OPTS_INIT;
    rx_results *res = NULL;
    size_t len = 0;

    (void)state;
    o.times_to_run = 2;
    o.task_chunk_size = 1;
    o.execution_timeout_s = 0.5;
    o.callback = sleep_on_first;
    assert_int_equal(rx_exec(ctx, &w, &o, &res, NULL), RX_OK);
    assert_non_null(rx_results_value(res, 1, &len));
    assert_int_equal(len, 8 << 20);
    rx_results_free(res);
    rx_context_free(ctx);
}

/* An absurd task_chunk_size is capped by the task count, not allocated. */
static void
test_exec_huge_chunk(void **state)
{
    rx_context *ctx = parallel(2);
    rx_work w = rx_work_function(fn_echo_arg);
    rx_exec_opts o = RX_EXEC_OPTS_INIT;
    rx_results *res = NULL;

    (void)state;
    o.times_to_run = 3;
    o.task_chunk_size = 4294967295u;
    assert_int_equal(rx_exec(ctx, &w, &o, &res, NULL), RX_OK);
    assert_int_equal(rx_results_count(res), 3);
    rx_results_free(res);
    rx_context_free(ctx);
}

/* Malformed, reserved and repeated environment entries are refused at submit. */
static void
test_exec_bad_env(void **state)
{
    rx_context *ctx = local();
    const char *argv[] = {"true", NULL};
    const char *bad[][3] = {{"NOEQ", NULL, NULL},
                            {"=x", NULL, NULL},
                            {"RXJOB_RESULT=/tmp/x", NULL, NULL},
                            {"A=1", "A=2", NULL}};

    (void)state;
    for (size_t k = 0; k < 4; k++) {
        rx_work w = rx_work_command(argv);
        rx_results *res = NULL;

        w.env = bad[k];
        assert_int_equal(rx_exec(ctx, &w, NULL, &res, NULL), RX_EINVAL);
        assert_null(res);
    }
    rx_context_free(ctx);
}

/* A relative TMPDIR still gives tasks (with another cwd) an absolute $RXJOB_RESULT. */
static void
test_exec_relative_tmpdir(void **state)
{
    rx_context *ctx = parallel(2);
    const char *argv[] = {"sh", "-c", "echo -n ok > \"$RXJOB_RESULT\"", NULL};
    rx_work w = rx_work_command(argv);
    rx_results *res = NULL;
    char *saved = strdup(getenv("TMPDIR"));
    char cwd[4096];

    (void)state;
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(scratch), 0);
    setenv("TMPDIR", "spool", 1);
    w.cwd = "/";
    assert_int_equal(rx_exec(ctx, &w, NULL, &res, NULL), RX_OK);
    assert_string_equal(rx_results_value(res, 0, NULL), "ok");
    assert_int_equal(chdir(cwd), 0);
    rx_results_free(res); /* after a chdir: the spool is still found and removed */
    setenv("TMPDIR", saved, 1);
    free(saved);
    rx_context_free(ctx);
}

static int
fn_close_stdout_at_0(rx_task *t)
{
    size_t i = rx_task_index(t);

    printf("task %zu\n", i);
    fflush(stdout);
    if (i == 0) {
        close(1);
        close(2);
    }
    return 0;
}

/* A task that closes stdout neither loses the next task's output nor blurs its range; and a
 * function task has no exit status. */
static void
test_exec_task_closes_stdout(void **state)
{
    rx_context *ctx = parallel(1);
    rx_work w = rx_work_function(fn_close_stdout_at_0);
    rx_exec_opts o = RX_EXEC_OPTS_INIT;
    rx_results *res = NULL;
    size_t len;
    char *got;

    (void)state;
    o.times_to_run = 3;
    o.task_chunk_size = 3;
    assert_int_equal(rx_exec(ctx, &w, &o, &res, NULL), RX_OK);
    got = all_output(res, &len);
    assert_string_equal(got, "==> task 0 <==\ntask 0\n==> task 1 <==\ntask 1\n"
                             "==> task 2 <==\ntask 2\n");
    free(got);
    assert_int_equal(rx_results_exit_status(res, 1), -1);
    rx_results_free(res);
    rx_context_free(ctx);
}

/* Out of processes (RLIMIT_NPROC) while other tasks run: tasks wait for a free process, they do
 * not fail. Needs root to switch to an unprivileged uid (the limit does not bind root). */
static void
test_exec_process_limit_waits(void **state)
{
    pid_t pid;
    int st;

    (void)state;
    if (geteuid() != 0)
        skip();
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *argv[] = {"sleep", "0.2", NULL};
        rx_work w = rx_work_command(argv);
        rx_exec_opts o = RX_EXEC_OPTS_INIT;
        struct rlimit lim = {3, 3};
        rx_context *ctx = NULL;
        rx_results *res = NULL;
        rx_err err;

        setenv("TMPDIR", "/tmp", 1); /* the test's spool directory is root's */
        if (setgid(65534) != 0 || setuid(65534) != 0 || setrlimit(RLIMIT_NPROC, &lim) != 0)
            _exit(10);
        if (rx_local_parallel_context(8, &ctx) != RX_OK)
            _exit(11);
        o.times_to_run = 12;
        err = rx_exec(ctx, &w, &o, &res, NULL);
        _exit(err == RX_OK && rx_results_failed(res) == 0 ? 0 : 12);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static int
write_argv_mode(int argc, char **argv)
{
    const char *path = getenv("RXJOB_RESULT");
    FILE *f;

    if (path == NULL)
        return 2;
    f = fopen(path, "w");
    if (f == NULL)
        return 2;
    for (int i = 0; i < argc; i++)
        fwrite(argv[i], 1, strlen(argv[i]) + 1, f);
    return fclose(f) == 0 ? 0 : 2;
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exec_continue_on_failure),
        cmocka_unit_test(test_exec_stop_on_failure),
        cmocka_unit_test(test_exec_count_mismatch),
        cmocka_unit_test(test_exec_bad_input),
        cmocka_unit_test(test_exec_parallel_overlap),
        cmocka_unit_test(test_exec_time_limit),
        cmocka_unit_test(test_exec_console_output),
        cmocka_unit_test(test_exec_big_output_bounded_memory),
        cmocka_unit_test(test_exec_command_argv_exact),
        cmocka_unit_test(test_exec_command_failures),
        cmocka_unit_test(test_exec_command_env_cwd_stdin),
        cmocka_unit_test(test_exec_worker_crash),
        cmocka_unit_test(test_exec_callback_in_task_order),
        cmocka_unit_test(test_exec_binary_args_to_functions),
        cmocka_unit_test(test_exec_no_leaks_1000),
        cmocka_unit_test(test_exec_spool_removed),
        cmocka_unit_test(test_exec_sigchld_ignored),
        cmocka_unit_test(test_exec_result_not_a_file),
        cmocka_unit_test(test_exec_caller_stdio_closed),
        cmocka_unit_test(test_exec_result_transfer_not_timed),
        cmocka_unit_test(test_exec_huge_chunk),
        cmocka_unit_test(test_exec_bad_env),
        cmocka_unit_test(test_exec_relative_tmpdir),
        cmocka_unit_test(test_exec_task_closes_stdout),
        cmocka_unit_test(test_exec_process_limit_waits),
    };
    char tmpl[] = "/tmp/rxjob-test-XXXXXX";
    char spool[4200];
    int rc;

    if (argc >= 2 && strcmp(argv[1], "--write-argv") == 0)
        return write_argv_mode(argc, argv);
    if (realpath("/proc/self/exe", self_exe) == NULL)
        return 1;
    if (mkdtemp(tmpl) == NULL)
        return 1;
    (void)snprintf(scratch, sizeof(scratch), "%s", tmpl);
    (void)snprintf(spool, sizeof(spool), "%s/spool", scratch);
    if (mkdir(spool, 0700) != 0)
        return 1;
    setenv("TMPDIR", spool, 1); /* the library's spools go here, so the test can see them */
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    {
        char cmd[4300];

        (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
        (void)system(cmd);
    }
    return rc;
}
