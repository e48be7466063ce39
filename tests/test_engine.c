/*
 * test_engine.c - rxjobd's job engine (src/server/engine.h) driven directly, with a temporary
 * state directory and real processes.
 *
 * The engine runs the build tree's task supervisor (rxjob-shim, RX_TEST_SHIM). This binary is
 * its own "function program": with $RXJOB_FUNCTION set it runs a tiny function the way a
 * program's rx_init would (argument from $RXJOB_ARG, result to $RXJOB_RESULT, failure message to
 * $RXJOB_ERROR, exit 127 for an unknown name). Recovery is tested both by closing an engine while
 * tasks run and by SIGKILLing a forked process that holds an engine, as a crash would.
 */
#define _GNU_SOURCE
#include "core/internal.h"
#include "exec/spawn.h"
#include "server/engine.h"
#include "server/exec_local.h"
#include "server/limits.h"
#include "store/schema.h"
#include "store/spool.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs the declarations of the headers above. */
#include <cmocka.h>

static char self_exe[PATH_MAX];

/* ---------------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------------- */

typedef struct fixture {
    char dir[256];
    engine *e;
    engine_opts opts;
    rx_limits limits; /* opts.limits points here when set: it outlives every reopen */
} fixture;

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
fixture_open(fixture *f)
{
    char err[512] = "";

    f->opts.state_dir = f->dir;
    f->opts.self_exe = self_exe;
    f->opts.shim_exe = RX_TEST_SHIM;
    f->e = NULL;
    assert_int_equal(engine_open(&f->opts, &f->e, err, sizeof(err)), RX_OK);
    assert_non_null(f->e);
}

/* A running engine on a new state directory: slots, hold (1: no task starts), a grace of
 * 300 ms; limits NULL for the defaults, else copied into the fixture. */
static fixture *
fixture_with(unsigned slots, int hold, const rx_limits *limits)
{
    fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    (void)snprintf(f->dir, sizeof(f->dir), "/tmp/rxjob-engine-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->opts.slots = slots;
    f->opts.hold = hold;
    f->opts.grace_ms = 300;
    if (limits != NULL) {
        f->limits = *limits;
        f->opts.limits = &f->limits;
    }
    fixture_open(f);
    return f;
}

static fixture *
fixture_new(unsigned slots, int hold)
{
    return fixture_with(slots, hold, NULL);
}

/* A running engine with these run-time limits, the others at their defaults. */
static fixture *
fixture_new_limits(unsigned slots, uint64_t output_bytes, uint64_t result_bytes)
{
    rx_limits lim;

    rx_limits_default(&lim);
    lim.output_bytes = output_bytes;
    lim.result_bytes = result_bytes;
    return fixture_with(slots, 0, &lim);
}

/* Close the engine (as a daemon's stop does: running tasks are left to run) and open a new
 * one on the same state directory with f->opts. */
static void
fixture_reopen(fixture *f)
{
    engine_close(f->e);
    f->e = NULL;
    fixture_open(f);
}

static void
fixture_free(fixture *f)
{
    engine_close(f->e);
    (void)nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
}

/* A command job: argv is a NULL-terminated list. */
static engine_spec
cmd_spec(char **argv)
{
    engine_spec s;

    memset(&s, 0, sizeof(s));
    s.uid = 1000;
    s.kind = RX_WORK_COMMAND;
    s.argv = argv;
    s.times_to_run = -1;
    s.continue_on_failure = 1;
    s.auto_cleanup = 1;
    return s;
}

/* A function job of this binary (run_function below): function name, one task per arg. */
static engine_spec
fn_spec(char *name, rx_buf *args, size_t n_args)
{
    static char *argv[] = {self_exe, NULL};
    engine_spec s = cmd_spec(argv);

    s.kind = RX_WORK_FUNCTION;
    s.function_name = name;
    s.args = args;
    s.n_args = n_args;
    s.has_args = 1;
    return s;
}

static int64_t
submit(fixture *f, const engine_spec *s)
{
    engine_job job;
    char why[256] = "";
    rx_err err = engine_submit(f->e, s, &job, why, sizeof(why));

    if (err != RX_OK)
        fail_msg("submit: %s: %s", rx_errname(err), why);
    assert_true(job.id > 0);
    return job.id;
}

static engine_job
wait_done(fixture *f, uid_t uid, int64_t id)
{
    engine_job job;

    assert_int_equal(engine_wait(f->e, uid, id, 60000, &job), RX_OK);
    return job;
}

/* Wait until the job has a running task (or is over). */
static engine_job
wait_running(fixture *f, uid_t uid, int64_t id)
{
    engine_job job;

    for (int i = 0; i < 1000; i++) {
        assert_int_equal(engine_get(f->e, uid, id, &job), RX_OK);
        if (job.running > 0 || rx_job_status_is_terminal(job.status))
            return job;
        sleep_ms(10);
    }
    fail_msg("job %" PRId64 " never ran", id);
    return job;
}

static void
scratch(const fixture *f, const char *name, char *buf, size_t len)
{
    (void)snprintf(buf, len, "%s/%s", f->dir, name);
}

static long
read_long_file(const char *path)
{
    for (int i = 0; i < 500; i++) {
        FILE *fp = fopen(path, "r");
        long v = 0;

        if (fp != NULL) {
            int n = fscanf(fp, "%ld", &v);

            fclose(fp);
            if (n == 1)
                return v;
        }
        sleep_ms(10);
    }
    fail_msg("no number in '%s'", path);
    return -1;
}

/* State, parent and process group of process pid (a /proc entry's name): 0, or -1 if it is
 * gone. */
static int
proc_stat(const char *pid, char *state, int *ppid, int *pgrp)
{
    char path[300], buf[1024];
    FILE *fp;
    char *p;

    (void)snprintf(path, sizeof(path), "/proc/%s/stat", pid);
    fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    p = fgets(buf, sizeof(buf), fp);
    fclose(fp);
    if (p == NULL || (p = strrchr(buf, ')')) == NULL)
        return -1;
    return sscanf(p + 1, " %c %d %d", state, ppid, pgrp) == 3 ? 0 : -1;
}

/* 1 if process pid's argv[1] is arg. */
static int
proc_arg1_is(const char *pid, const char *arg)
{
    char path[300], buf[1024];
    FILE *fp;
    size_t len;
    char *p;

    (void)snprintf(path, sizeof(path), "/proc/%s/cmdline", pid);
    fp = fopen(path, "r");
    if (fp == NULL)
        return 0;
    len = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[len] = '\0';
    p = memchr(buf, '\0', len);
    return p != NULL && (size_t)(p - buf) + 1 < len && strcmp(p + 1, arg) == 0;
}

/* Processes now that are: in group pgid and alive (pgid > 0); or this process's children
 * alive with argv[1] arg1. */
static int
count_procs(pid_t pgid, const char *arg1)
{
    DIR *d = opendir("/proc");
    struct dirent *ent;
    int n = 0;

    assert_non_null(d);
    while ((ent = readdir(d)) != NULL) {
        char st;
        int ppid, pgrp;

        if (ent->d_name[0] < '1' || ent->d_name[0] > '9' ||
            proc_stat(ent->d_name, &st, &ppid, &pgrp) != 0)
            continue;
        if (pgid > 0)
            n += pgrp == pgid && st != 'Z';
        else if (ppid == (int)getpid())
            n += st != 'Z' && proc_arg1_is(ent->d_name, arg1);
    }
    closedir(d);
    return n;
}

/* 1 if a live (not zombie) process is in group pgid, after up to 2 s for it to go. */
static int
group_alive(pid_t pgid)
{
    for (int tries = 0; tries < 200; tries++) {
        if (count_procs(pgid, NULL) == 0)
            return 0;
        sleep_ms(10);
    }
    return 1;
}

/* The parent pid of pid (field 4 of /proc/PID/stat). */
static pid_t
parent_of(pid_t pid)
{
    char name[32], st;
    int ppid = -1, pgrp;

    (void)snprintf(name, sizeof(name), "%d", (int)pid);
    assert_int_equal(proc_stat(name, &st, &ppid, &pgrp), 0);
    return (pid_t)ppid;
}

#define MAX_CHILDREN 256

/* This process's children now, alive or not (at most MAX_CHILDREN): how many, into pids. */
static int
children_now(pid_t *pids)
{
    DIR *d = opendir("/proc");
    struct dirent *ent;
    int n = 0;

    assert_non_null(d);
    while ((ent = readdir(d)) != NULL && n < MAX_CHILDREN) {
        char st;
        int ppid, pgrp;

        if (ent->d_name[0] >= '1' && ent->d_name[0] <= '9' &&
            proc_stat(ent->d_name, &st, &ppid, &pgrp) == 0 && ppid == (int)getpid())
            pids[n++] = (pid_t)atoi(ent->d_name);
    }
    closedir(d);
    return n;
}

/* Zombie children now that were not among before[0..n): a test's own that nobody reaped. A
 * supervisor an earlier test's engine left running at its close (they outlive the engine, to
 * be adopted) may exit during a later test; it was a child before that test began. */
static int
new_zombie_children(const pid_t *before, int n)
{
    pid_t now[MAX_CHILDREN];
    int k = children_now(now), zombies = 0;

    for (int i = 0; i < k; i++) {
        char name[32], st;
        int ppid, pgrp, known = 0;

        for (int j = 0; j < n && !known; j++)
            known = before[j] == now[i];
        (void)snprintf(name, sizeof(name), "%d", (int)now[i]);
        if (!known && proc_stat(name, &st, &ppid, &pgrp) == 0 && st == 'Z')
            zombies++;
    }
    return zombies;
}

static int
count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *ent;
    int n = 0;

    assert_non_null(d);
    while ((ent = readdir(d)) != NULL)
        n += ent->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own fd */
}

/* Collect results, and read the OK slots' values from their files (values_dir) the way the
 * HTTP layer streams them: the engine itself never loads a value. */
static engine_results *
results(fixture *f, uid_t uid, int64_t id, int auto_cleanup)
{
    engine_results *res = NULL;
    rx_err err = engine_get_results(f->e, uid, id, auto_cleanup, &res);

    if (err != RX_OK)
        fail_msg("results of job %" PRId64 ": %s", id, rx_errname(err));
    assert_non_null(res->values_dir);
    for (size_t i = 0; i < res->n; i++) {
        char path[PATH_MAX];
        void *data = NULL;
        size_t len = 0;

        assert_null(res->slots[i].value);
        if (res->slots[i].state != RX_TASK_OK)
            continue;
        if (res->slots[i].result_run > 0) {
            /* A chunk's task: its bytes in the chunk's results file. */
            const engine_slot *sl = &res->slots[i];

            assert_int_equal(spool_task_path(res->values_dir, sl->result_run - 1, ".results", path,
                                             sizeof(path)),
                             0);
            err = spool_read_file(path, RX_RESULT_MAX_BYTES, &data, &len);
            assert_int_equal(err, RX_OK);
            assert_true(sl->result_off + sl->result_len <= len);
            memmove(data, (char *)data + sl->result_off, sl->result_len);
            len = sl->result_len;
            ((char *)data)[len] = '\0';
            res->slots[i].value = data;
            res->slots[i].value_len = len;
            continue;
        }
        assert_int_equal(spool_task_path(res->values_dir, i, ".result", path, sizeof(path)), 0);
        err = spool_read_file(path, RX_RESULT_MAX_BYTES, &data, &len);
        if (err == RX_ENOENT) {
            data = rx__memdup("", 0);
            err = RX_OK;
        }
        assert_int_equal(err, RX_OK);
        res->slots[i].value = data;
        res->slots[i].value_len = len;
    }
    return res;
}

/* Submit s, wait for the job to end with status want; its id. */
static int64_t
run_job(fixture *f, const engine_spec *s, rx_job_status want)
{
    int64_t id = submit(f, s);

    assert_int_equal(wait_done(f, s->uid, id).status, want);
    return id;
}

/* run_job, then collect the results with cleanup. */
static engine_results *
run_collect(fixture *f, const engine_spec *s, rx_job_status want)
{
    return results(f, s->uid, run_job(f, s, want), 1);
}

/* A job whose one task is "sh -c CMD sh PIDFILE": CMD writes the task's pid into "$1", a file
 * in the state directory. Lives on the test's stack. */
typedef struct pid_job {
    char pidfile[PATH_MAX];
    char *argv[6];
    engine_spec s;
} pid_job;

static void
pid_job_init(pid_job *pj, const fixture *f, const char *cmd)
{
    scratch(f, "pid", pj->pidfile, sizeof(pj->pidfile));
    pj->argv[0] = "sh";
    pj->argv[1] = "-c";
    pj->argv[2] = (char *)cmd;
    pj->argv[3] = "sh";
    pj->argv[4] = pj->pidfile;
    pj->argv[5] = NULL;
    pj->s = cmd_spec(pj->argv);
}

/* Submit the pid_job (its id in *id) and wait for the pid its task writes. */
static pid_t
pid_job_start(fixture *f, pid_job *pj, int64_t *id)
{
    *id = submit(f, &pj->s);
    return (pid_t)read_long_file(pj->pidfile);
}

/* SIGKILL the task supervisor (the parent) of task, a moment after the task started; its pid. */
static pid_t
kill_supervisor(pid_t task)
{
    pid_t shim;

    sleep_ms(100);
    shim = parent_of(task);
    assert_true(shim > 1);
    assert_int_equal(kill(shim, SIGKILL), 0);
    return shim;
}

/* The spool directory of job id is removed within ms milliseconds. */
static void
assert_spool_gone(const fixture *f, int64_t id, int ms)
{
    char dir[PATH_MAX + 32];
    struct stat st;

    (void)snprintf(dir, sizeof(dir), "%s/spool/%" PRId64, f->dir, id);
    for (int i = 0; i < ms / 10 && stat(dir, &st) == 0; i++)
        sleep_ms(10);
    assert_int_not_equal(stat(dir, &st), 0);
}

/* The max number of [start, end] intervals open at once; values are "start end" in ns. */
static int
max_overlap(engine_results **res, size_t n_res)
{
    int64_t starts[256], ends[256];
    size_t n = 0;
    int best = 0;

    for (size_t r = 0; r < n_res; r++) {
        for (size_t i = 0; i < res[r]->n; i++) {
            long long a, b;

            assert_int_equal(res[r]->slots[i].state, RX_TASK_OK);
            assert_int_equal(sscanf(res[r]->slots[i].value, "%lld %lld", &a, &b), 2);
            assert_true(n < 256);
            starts[n] = a;
            ends[n++] = b;
        }
    }
    for (size_t i = 0; i < n; i++) {
        int open = 0;

        for (size_t k = 0; k < n; k++)
            open += starts[k] <= starts[i] && ends[k] > starts[i];
        if (open > best)
            best = open;
    }
    return best;
}

/* ---------------------------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------------------------- */

static void
test_engine_submit_wait_finished(void **state)
{
    fixture *f = fixture_new(4, 0);
    char *argv[] = {"sh", "-c", "sleep 0.3; printf 'hi %s' $RXJOB_TASK_INDEX > $RXJOB_RESULT",
                    NULL};
    engine_spec s = cmd_spec(argv);
    engine_results *res;
    engine_job job;
    int64_t id;

    (void)state;
    s.times_to_run = 2;
    id = submit(f, &s);
    assert_int_equal(engine_get(f->e, 1000, id, &job), RX_OK);
    assert_true(job.status == RX_JOB_QUEUED || job.status == RX_JOB_RUNNING);
    assert_int_equal(job.n_tasks, 2);
    assert_int_equal(job.pending + job.running + job.ok + job.failed, 2);
    job = wait_done(f, 1000, id);
    assert_int_equal(job.status, RX_JOB_FINISHED);
    assert_int_equal(job.ok, 2);
    assert_true(job.ended_s >= job.created_s);

    /* Without cleanup: twice, same values. */
    for (int round = 0; round < 2; round++) {
        res = results(f, 1000, id, 0);
        assert_int_equal(res->n, 2);
        assert_int_equal(res->slots[0].state, RX_TASK_OK);
        assert_string_equal(res->slots[0].value, "hi 0");
        assert_string_equal(res->slots[1].value, "hi 1");
        assert_int_equal(res->slots[1].value_len, 4);
        assert_null(res->slots[1].error);
        engine_results_free(res);
    }
    /* With the job's own setting (auto_cleanup on) but not delivered (the client went away):
     * nothing is deleted, and the job can be collected again. */
    res = results(f, 1000, id, -1);
    assert_int_equal(engine_get(f->e, 1000, id, &job), RX_ENOENT); /* claimed: hidden */
    assert_int_equal(engine_results_end(res, 0), RX_OK);
    assert_int_equal(engine_get(f->e, 1000, id, &job), RX_OK);
    /* Delivered: then it is gone. */
    res = results(f, 1000, id, -1);
    assert_int_equal(res->job.status, RX_JOB_FINISHED);
    assert_string_equal(res->slots[1].value, "hi 1");
    assert_int_equal(engine_results_end(res, 1), RX_OK);
    res = NULL;
    assert_int_equal(engine_get_results(f->e, 1000, id, 0, &res), RX_ENOENT);
    assert_int_equal(engine_get(f->e, 1000, id, &job), RX_ENOENT);
    fixture_free(f);
}

static void
test_engine_results_while_running(void **state)
{
    fixture *f = fixture_new(2, 0);
    char *argv[] = {"sleep", "1", NULL};
    engine_spec s = cmd_spec(argv);
    engine_results *res = NULL;
    int64_t id = submit(f, &s);

    (void)state;
    assert_int_equal(engine_get_results(f->e, 1000, id, 1, &res), RX_ENOTFINISHED);
    (void)wait_running(f, 1000, id);
    assert_int_equal(engine_get_results(f->e, 1000, id, 1, &res), RX_ENOTFINISHED);
    assert_null(res);
    assert_int_equal(wait_done(f, 1000, id).status, RX_JOB_FINISHED);
    engine_results_free(results(f, 1000, id, 1));
    fixture_free(f);
}

static void
test_engine_cancel_running(void **state)
{
    fixture *f = fixture_new(2, 0);
    pid_job pj;
    engine_results *res = NULL;
    engine_job job;
    int canceled = -1;
    int64_t id;
    pid_t pgid;

    (void)state;
    /* The task and a background child of it: both must go. */
    pid_job_init(&pj, f, "echo started; sleep 30 & echo $$ > \"$1\"; wait");
    pgid = pid_job_start(f, &pj, &id);
    assert_true(group_alive(pgid));
    assert_int_equal(engine_cancel(f->e, 1000, id, &canceled, &job), RX_OK);
    assert_int_equal(canceled, 1);
    assert_int_equal(job.cancel_requested, 1);
    assert_true(job.status == RX_JOB_RUNNING || job.status == RX_JOB_CANCELED);
    job = wait_done(f, 1000, id);
    assert_int_equal(job.status, RX_JOB_CANCELED);
    assert_false(group_alive(pgid));
    assert_int_equal(engine_get_results(f->e, 1000, id, 1, &res), RX_ECANCELED);
    /* Output and results are removed; the record stays until cleanup. */
    assert_spool_gone(f, id, 1000);
    assert_int_equal(engine_get(f->e, 1000, id, &job), RX_OK);
    assert_int_equal(job.status, RX_JOB_CANCELED);
    /* A second cancel changes nothing. */
    assert_int_equal(engine_cancel(f->e, 1000, id, &canceled, NULL), RX_OK);
    assert_int_equal(canceled, 0);
    fixture_free(f);
}

static void
test_engine_cancel_queued(void **state)
{
    fixture *f = fixture_new(1, 0);
    char marker[PATH_MAX], cmd[PATH_MAX + 32];
    char *argv_a[] = {"sleep", "0.5", NULL};
    char *argv_b[] = {"sh", "-c", cmd, NULL};
    engine_spec a = cmd_spec(argv_a), b = cmd_spec(argv_b);
    engine_job job;
    int canceled = 0;
    int64_t ida, idb;

    (void)state;
    scratch(f, "marker", marker, sizeof(marker));
    (void)snprintf(cmd, sizeof(cmd), "touch %s", marker);
    ida = submit(f, &a);
    idb = submit(f, &b);
    assert_int_equal(engine_get(f->e, 1000, idb, &job), RX_OK);
    assert_int_equal(job.status, RX_JOB_QUEUED);
    assert_int_equal(engine_cancel(f->e, 1000, idb, &canceled, &job), RX_OK);
    assert_int_equal(canceled, 1);
    assert_int_equal(job.status, RX_JOB_CANCELED); /* at once: nothing had started */
    assert_int_equal(wait_done(f, 1000, ida).status, RX_JOB_FINISHED);
    sleep_ms(200);
    assert_int_not_equal(access(marker, F_OK), 0);
    fixture_free(f);
}

static void
test_engine_cancel_finished_refused(void **state)
{
    fixture *f = fixture_new(2, 0);
    char *argv[] = {"sh", "-c", "printf kept > $RXJOB_RESULT", NULL};
    engine_spec s = cmd_spec(argv);
    engine_results *res;
    engine_job job;
    int canceled = -1;
    int64_t id = run_job(f, &s, RX_JOB_FINISHED);

    (void)state;
    assert_int_equal(engine_cancel(f->e, 1000, id, &canceled, &job), RX_OK);
    assert_int_equal(canceled, 0);
    assert_int_equal(job.status, RX_JOB_FINISHED);
    assert_int_equal(job.cancel_requested, 0);
    res = results(f, 1000, id, 1);
    assert_string_equal(res->slots[0].value, "kept");
    engine_results_free(res);
    fixture_free(f);
}

static void
test_engine_fail13_continue(void **state)
{
    fixture *f = fixture_new(4, 0);
    char *argv[] = {"sh", "-c", "test $RXJOB_TASK_INDEX -ne 13", NULL};
    engine_spec s = cmd_spec(argv);
    engine_results *res;
    engine_job job;
    int64_t id;

    (void)state;
    s.times_to_run = 20;
    id = submit(f, &s);
    job = wait_done(f, 1000, id);
    assert_int_equal(job.status, RX_JOB_FAILED);
    assert_int_equal(job.ok, 19);
    assert_int_equal(job.failed, 1);
    res = results(f, 1000, id, 1);
    for (size_t i = 0; i < 20; i++) {
        if (i == 13) {
            assert_int_equal(res->slots[i].state, RX_TASK_EXIT);
            assert_int_equal(res->slots[i].exit_status, 1);
            assert_string_equal(res->slots[i].error, "exit status 1");
            assert_null(res->slots[i].value);
        } else {
            assert_int_equal(res->slots[i].state, RX_TASK_OK);
            assert_string_equal(res->slots[i].value, "");
        }
    }
    engine_results_free(res);
    fixture_free(f);
}

static void
test_engine_fail13_stop(void **state)
{
    fixture *f = fixture_new(4, 0);
    char *argv[] = {"sh", "-c", "test $RXJOB_TASK_INDEX -ne 13", NULL};
    engine_spec s = cmd_spec(argv);
    engine_results *res;
    engine_job job;
    int64_t id;

    (void)state;
    s.times_to_run = 20;
    s.continue_on_failure = 0;
    s.num_tasks = 1; /* one at a time: exactly tasks 14..19 never start */
    id = submit(f, &s);
    job = wait_done(f, 1000, id);
    assert_int_equal(job.status, RX_JOB_FAILED);
    assert_int_equal(job.ok, 13);
    assert_int_equal(job.failed, 7);
    res = results(f, 1000, id, 1);
    for (size_t i = 0; i < 13; i++)
        assert_int_equal(res->slots[i].state, RX_TASK_OK);
    assert_int_equal(res->slots[13].state, RX_TASK_EXIT);
    for (size_t i = 14; i < 20; i++) {
        assert_int_equal(res->slots[i].state, RX_TASK_NOT_RUN);
        assert_non_null(strstr(res->slots[i].error, "after task 13 failed"));
    }
    engine_results_free(res);
    fixture_free(f);
}

static void
test_engine_fail_stop_running(void **state)
{
    fixture *f = fixture_new(4, 0);
    char *argv[] = {"sh", "-c",
                    "if [ $RXJOB_TASK_INDEX -eq 0 ]; then sleep 0.3; exit 2; fi; "
                    "exec sleep 30",
                    NULL};
    engine_spec s = cmd_spec(argv);
    engine_results *res;
    engine_job job;
    double t0 = now_s();
    int64_t id;

    (void)state;
    s.times_to_run = 10;
    s.continue_on_failure = 0;
    id = submit(f, &s);
    job = wait_done(f, 1000, id);
    assert_true(now_s() - t0 < 10);
    assert_int_equal(job.status, RX_JOB_FAILED);
    res = results(f, 1000, id, 1);
    assert_int_equal(res->slots[0].state, RX_TASK_EXIT);
    for (size_t i = 1; i < 4; i++) {
        assert_int_equal(res->slots[i].state, RX_TASK_STOPPED);
        assert_non_null(strstr(res->slots[i].error, "stopped: the job stopped after task 0"));
    }
    for (size_t i = 4; i < 10; i++)
        assert_int_equal(res->slots[i].state, RX_TASK_NOT_RUN);
    engine_results_free(res);
    fixture_free(f);
}

static const char *stamp_cmd = "a=$(date +%s%N); sleep 0.3; b=$(date +%s%N); "
                               "echo \"$a $b\" > $RXJOB_RESULT";

static void
test_engine_num_tasks_cap(void **state)
{
    fixture *f = fixture_new(4, 0);
    char *argv[] = {"sh", "-c", (char *)stamp_cmd, NULL};
    engine_spec s = cmd_spec(argv);
    engine_results *res;
    int overlap;

    (void)state;
    s.times_to_run = 6;
    s.num_tasks = 2;
    res = run_collect(f, &s, RX_JOB_FINISHED);
    overlap = max_overlap(&res, 1);
    assert_true(overlap <= 2);
    assert_true(overlap >= 1);
    engine_results_free(res);
    fixture_free(f);
}

static void
test_engine_daemon_slots(void **state)
{
    fixture *f = fixture_new(3, 0);
    char *argv[] = {"sh", "-c", (char *)stamp_cmd, NULL};
    engine_spec s = cmd_spec(argv);
    engine_results *res[2];
    int64_t id[2];
    int overlap;

    (void)state;
    s.times_to_run = 4;
    id[0] = submit(f, &s);
    id[1] = submit(f, &s);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(wait_done(f, 1000, id[k]).status, RX_JOB_FINISHED);
        res[k] = results(f, 1000, id[k], 1);
    }
    overlap = max_overlap(res, 2);
    assert_true(overlap <= 3);
    assert_true(overlap >= 2);
    engine_results_free(res[0]);
    engine_results_free(res[1]);
    fixture_free(f);
}

static void
test_engine_time_limit(void **state)
{
    fixture *f = fixture_new(2, 0);
    char *argv[] = {"sleep", "30", NULL};
    engine_spec s = cmd_spec(argv);
    engine_results *res;
    double t0 = now_s();

    (void)state;
    s.execution_timeout_s = 0.3;
    res = run_collect(f, &s, RX_JOB_FAILED);
    assert_true(now_s() - t0 < 5);
    assert_int_equal(res->slots[0].state, RX_TASK_TIMEOUT);
    assert_non_null(strstr(res->slots[0].error, "time limit of 0.3 s exceeded"));
    assert_int_equal(res->slots[0].signal, SIGTERM);
    engine_results_free(res);
    fixture_free(f);
}

/* Closing the engine leaves the task running; a new engine adopts it and captures its exit. */
static void
test_engine_recover_adopt(void **state)
{
    pid_t children_before[MAX_CHILDREN];
    int n_before = children_now(children_before);
    fixture *f = fixture_new(2, 0);
    char *argv[] = {"sh", "-c", "sleep 1; echo bye; exit 3", NULL};
    engine_spec s = cmd_spec(argv);
    engine_results *res;
    engine_job job;
    int64_t id;

    (void)state;
    id = submit(f, &s);
    (void)wait_running(f, 1000, id);
    fixture_reopen(f);
    assert_int_equal(engine_get(f->e, 1000, id, &job), RX_OK);
    assert_int_equal(job.status, RX_JOB_RUNNING);
    assert_int_equal(job.running, 1);
    job = wait_done(f, 1000, id);
    assert_int_equal(job.status, RX_JOB_FAILED);
    res = results(f, 1000, id, 1);
    assert_int_equal(res->slots[0].state, RX_TASK_EXIT);
    assert_int_equal(res->slots[0].exit_status, 3);
    engine_results_free(res);
    assert_int_equal(new_zombie_children(children_before, n_before), 0);
    fixture_free(f);
}

/* The supervisor and its task are killed while no engine watches: the task is LOST. */
static void
test_engine_recover_lost(void **state)
{
    fixture *f = fixture_new(2, 0);
    pid_job pj;
    engine_results *res;
    engine_job job;
    pid_t task, shim;
    int64_t id;

    (void)state;
    pid_job_init(&pj, f, "echo $$ > \"$1\"; exec sleep 30");
    task = pid_job_start(f, &pj, &id);
    engine_close(f->e);
    f->e = NULL;
    shim = parent_of(task);
    assert_true(shim > 1);
    assert_int_equal(kill(shim, SIGKILL), 0);
    assert_int_equal(kill(-task, SIGKILL), 0);
    assert_int_equal(waitpid(shim, NULL, 0), shim); /* it is our child */
    fixture_open(f);
    job = wait_done(f, 1000, id);
    assert_int_equal(job.status, RX_JOB_FAILED);
    res = results(f, 1000, id, 1);
    assert_int_equal(res->slots[0].state, RX_TASK_LOST);
    assert_string_equal(res->slots[0].error,
                        "lost: its supervisor vanished without an exit record");
    engine_results_free(res);
    fixture_free(f);
}

/* 1 if pid is a live process (not a zombie), after waiting up to ms for it to go. */
static int
proc_live(pid_t pid, int ms)
{
    for (int waited = 0;; waited += 10) {
        uint64_t start;
        char st = 0;

        if (rx__proc_stat(pid, &st, NULL, &start) != 0 || st == 'Z' || st == 'X')
            return 0;
        if (waited >= ms)
            return 1;
        sleep_ms(10);
    }
}

/* exec_local_kill_orphan with a supervisor that is a zombie (an adopted one is nobody's child
 * here: init may reap it late, or, on this machine, never): its session still holds its
 * orphans, which are killed. A process stands in for the supervisor: it leads a session, starts
 * a child in it, and exits without being reaped. Before, a zombie read as alive and the orphans
 * ran on. */
static void
test_engine_kill_orphan_of_zombie_supervisor(void **state)
{
    int fds[2];
    pid_t leader, child = 0;
    exec_shim sh;

    (void)state;
    assert_int_equal(pipe(fds), 0);
    leader = fork();
    assert_true(leader >= 0);
    if (leader == 0) {
        pid_t c;

        close(fds[0]);
        if (setsid() < 0)
            _exit(1);
        c = fork();
        if (c == 0) {
            close(fds[1]);
            execlp("sleep", "sleep", "300", (char *)NULL);
            _exit(127);
        }
        (void)write(fds[1], &c, sizeof(c));
        _exit(0);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], &child, sizeof(child)), (ssize_t)sizeof(child));
    close(fds[0]);
    sleep_ms(100); /* the leader is a zombie now: not reaped */
    assert_true(proc_live(child, 0));
    memset(&sh, 0, sizeof(sh));
    sh.pid = 0;
    sh.sid = leader;
    sh.pidfd = -1;
    sh.go_fd = -1;
    assert_int_equal(rx__proc_start_time(leader, &sh.start_time), 0);
    exec_local_kill_orphan(&sh, 0, geteuid());
    assert_false(proc_live(child, 2000));
    assert_int_equal(waitpid(leader, NULL, 0), leader);
}

/* Only the supervisor is killed: the orphaned task is killed too when it is found lost. */
static void
test_engine_lost_kills_orphan(void **state)
{
    fixture *f = fixture_new(2, 0);
    pid_job pj;
    engine_results *res;
    pid_t task;
    int64_t id;

    (void)state;
    pid_job_init(&pj, f, "echo $$ > \"$1\"; exec sleep 30");
    task = pid_job_start(f, &pj, &id);
    (void)kill_supervisor(task);
    assert_int_equal(wait_done(f, 1000, id).status, RX_JOB_FAILED);
    assert_false(group_alive(task));
    res = results(f, 1000, id, 1);
    assert_int_equal(res->slots[0].state, RX_TASK_LOST);
    engine_results_free(res);
    fixture_free(f);
}

/* The orphans are the supervisor's whole session: a child the task moved into a process group
 * of its own (setpgid, as a shell's job control does) is killed too, not only the task's group.
 * Nothing is read from the job directory to find them. */
static void
test_engine_lost_kills_orphan_other_group(void **state)
{
    fixture *f = fixture_new(2, 0);
    char child_file[PATH_MAX + 8];
    pid_job pj;
    pid_t task, child;
    int64_t id;

    (void)state;
    pid_job_init(
        &pj, f,
        "perl -e 'setpgrp(0, 0); open(my $f, \">\", \"$ARGV[0].child\") or die; "
        "print $f \"$$\\n\"; close $f; sleep 30' \"$1\" & echo $$ > \"$1\"; exec sleep 30");
    task = pid_job_start(f, &pj, &id);
    (void)snprintf(child_file, sizeof(child_file), "%s.child", pj.pidfile);
    child = (pid_t)read_long_file(child_file);
    assert_true(child > 1 && child != task);
    assert_true(group_alive(child)); /* a group of its own, alive */
    (void)kill_supervisor(task);
    assert_int_equal(wait_done(f, 1000, id).status, RX_JOB_FAILED);
    assert_false(group_alive(task));
    assert_false(group_alive(child));
    fixture_free(f);
}

/* A task started again after a go-0 record (its first supervisor was never told "go") must not
 * be taken for "never ran" again when its second supervisor dies without a record: the stale
 * go-0 record is removed before the task starts, so the task is LOST, not started a third time. */
static void
test_engine_stale_go0_record(void **state)
{
    fixture *f = fixture_new(2, 0);
    char dir[PATH_MAX];
    pid_job pj;
    spool_exit rec;
    engine_results *res;
    int64_t id;

    (void)state;
    /* The first job's id is 1: its spool directory, with the go-0 record a first supervisor
     * would have left, exists before it is submitted. */
    assert_int_equal(spool_job_dir(f->dir, 1, dir, sizeof(dir)), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    memset(&rec, 0, sizeof(rec));
    rec.go = 0;
    rec.state = RX_TASK_NOT_RUN;
    rec.exit_status = -1;
    assert_int_equal(spool_exit_write(dir, 0, &rec), RX_OK);
    pid_job_init(&pj, f, "echo $$ >> \"$1\"; exec sleep 30");
    (void)kill_supervisor(pid_job_start(f, &pj, &id));
    assert_int_equal(id, 1);
    assert_int_equal(wait_done(f, 1000, id).status, RX_JOB_FAILED);
    res = results(f, 1000, id, 1);
    assert_int_equal(res->slots[0].state, RX_TASK_LOST);
    engine_results_free(res);
    fixture_free(f);
}

static void
test_engine_queued_run_after_reopen(void **state)
{
    fixture *f = fixture_new(2, 1);
    char *argv[] = {"sh", "-c", "printf later > $RXJOB_RESULT", NULL};
    engine_spec s = cmd_spec(argv);
    engine_results *res;
    engine_job job;
    int64_t id;

    (void)state;
    s.times_to_run = 3;
    id = submit(f, &s);
    sleep_ms(200);
    assert_int_equal(engine_get(f->e, 1000, id, &job), RX_OK);
    assert_int_equal(job.status, RX_JOB_QUEUED); /* hold: nothing starts */
    /* One engine per state directory. */
    {
        engine *second = NULL;
        char err[256] = "";

        assert_int_equal(engine_open(&f->opts, &second, err, sizeof(err)), RX_EINVAL);
        assert_non_null(strstr(err, "another rxjobd"));
        assert_null(second);
    }
    f->opts.hold = 0;
    fixture_reopen(f);
    assert_int_equal(wait_done(f, 1000, id).status, RX_JOB_FINISHED);
    res = results(f, 1000, id, 1);
    assert_string_equal(res->slots[2].value, "later");
    engine_results_free(res);
    fixture_free(f);
}

/* The daemon died between recording a start and saying "go": the supervisor left a go-0 record.
 * That task never ran, so it is started again; a task recorded as ended is not. */
static void
test_engine_recover_not_started(void **state)
{
    fixture *f = fixture_new(2, 1);
    char log[PATH_MAX], cmd[PATH_MAX + 64], path[PATH_MAX + 64], sql[256];
    char *argv[] = {"sh", "-c", cmd, NULL};
    static const char go0[] = "rxjob-exit 1\ngo 0\nstate NOT_RUN\nexit_status -1\nsignal 0\n"
                              "task_pid 0\nstarted_s 0.000000\nended_s 0.000000\nerror 0\n";
    engine_spec s = cmd_spec(argv);
    engine_job job;
    sqlite3 *db = NULL;
    char line[64];
    FILE *fp;
    int64_t id;
    int seen[3] = {0, 0, 0};

    (void)state;
    scratch(f, "ran", log, sizeof(log));
    (void)snprintf(cmd, sizeof(cmd), "echo $RXJOB_TASK_INDEX >> %s", log);
    s.times_to_run = 3;
    id = submit(f, &s);
    engine_close(f->e);
    f->e = NULL;
    (void)snprintf(path, sizeof(path), "%s/jobs.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    (void)snprintf(sql, sizeof(sql),
                   "INSERT INTO tasks (job_id, idx, state, task_state, exit_status) "
                   "VALUES (%" PRId64 ", 0, 1, 0, 0);"
                   "INSERT INTO tasks (job_id, idx, state) VALUES (%" PRId64 ", 1, 0);"
                   "UPDATE jobs SET status = 1 WHERE id = %" PRId64 ";",
                   id, id, id);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    (void)snprintf(path, sizeof(path), "%s/spool/%" PRId64, f->dir, id);
    assert_int_equal(mkdir(path, 0700), 0);
    (void)snprintf(path, sizeof(path), "%s/spool/%" PRId64 "/t1.exit", f->dir, id);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(go0, fp) >= 0, 1);
    fclose(fp);

    f->opts.hold = 0;
    fixture_open(f);
    job = wait_done(f, 1000, id);
    assert_int_equal(job.status, RX_JOB_FINISHED);
    assert_int_equal(job.ok, 3);
    fp = fopen(log, "r");
    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp) != NULL) {
        long i = strtol(line, NULL, 10);

        assert_true(i >= 1 && i <= 2);
        seen[i]++;
    }
    fclose(fp);
    assert_int_equal(seen[1], 1);
    assert_int_equal(seen[2], 1);
    fixture_free(f);
}

/* A real crash: a forked process holding the engine is SIGKILLed while its task runs. */
/* The store's log is written ahead at open, whether the directory is new or was closed cleanly
 * (SQLite removes the log then): commits overwrite blocks it has instead of growing it. Jobs
 * written through it survive the reopen. (A log left by a crash is kept: recover_after_kill9.) */
static void
test_engine_wal_written_ahead(void **state)
{
    fixture *f = fixture_new(2, 0);
    char *argv[] = {"sh", "-c", "printf kept > $RXJOB_RESULT", NULL};
    engine_spec s = cmd_spec(argv);
    engine_results *res;
    char wal[300];
    struct stat st;
    int64_t id;

    (void)state;
    (void)snprintf(wal, sizeof(wal), "%s/jobs.db-wal", f->dir);
    assert_int_equal(stat(wal, &st), 0);
    assert_true((uint64_t)st.st_size >= STORE_WAL_PREFILL_BYTES);
    assert_true((uint64_t)st.st_blocks * 512 >= STORE_WAL_PREFILL_BYTES); /* written, not a hole */
    id = submit(f, &s);
    assert_int_equal(wait_done(f, 1000, id).status, RX_JOB_FINISHED);
    fixture_reopen(f);
    assert_int_equal(stat(wal, &st), 0);
    assert_true((uint64_t)st.st_size >= STORE_WAL_PREFILL_BYTES);
    res = results(f, 1000, id, 1);
    assert_string_equal(res->slots[0].value, "kept");
    engine_results_free(res);
    fixture_free(f);
}

static void
test_engine_recover_after_kill9(void **state)
{
    fixture *f = fixture_new(2, 0);
    char *argv[] = {"sh", "-c", "sleep 1; printf survived > $RXJOB_RESULT", NULL};
    engine_spec s = cmd_spec(argv);
    engine_results *res;
    int pfd[2];
    int64_t id = 0;
    pid_t child;
    int status;

    (void)state;
    engine_close(f->e); /* the child holds the only engine on the directory */
    f->e = NULL;
    assert_int_equal(pipe(pfd), 0);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        char err[256];
        engine_job job;
        engine *e = NULL;

        close(pfd[0]);
        if (engine_open(&f->opts, &e, err, sizeof(err)) != RX_OK ||
            engine_submit(e, &s, &job, err, sizeof(err)) != RX_OK)
            _exit(1);
        for (;;) {
            if (engine_get(e, 1000, job.id, &job) != RX_OK)
                _exit(1);
            if (job.running > 0)
                break;
            sleep_ms(10);
        }
        if (write(pfd[1], &job.id, sizeof(job.id)) != (ssize_t)sizeof(job.id))
            _exit(1);
        pause();
        _exit(0);
    }
    close(pfd[1]);
    assert_int_equal(read(pfd[0], &id, sizeof(id)), (ssize_t)sizeof(id));
    close(pfd[0]);
    assert_int_equal(kill(child, SIGKILL), 0);
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFSIGNALED(status));
    fixture_open(f);
    assert_int_equal(wait_done(f, 1000, id).status, RX_JOB_FINISHED);
    res = results(f, 1000, id, 1);
    assert_string_equal(res->slots[0].value, "survived");
    engine_results_free(res);
    fixture_free(f);
}

/* A cancel accepted before the engine went away is carried out by the next one. */
static void
test_engine_cancel_survives_restart(void **state)
{
    fixture *f = fixture_new(2, 0);
    pid_job pj;
    int canceled = 0;
    pid_t task;
    int64_t id;

    (void)state;
    /* The task ignores SIGTERM, so it outlives the engine's close until SIGKILL. */
    pid_job_init(&pj, f, "trap '' TERM; echo $$ > \"$1\"; sleep 30");
    f->opts.grace_ms = 1500;
    fixture_reopen(f);
    task = pid_job_start(f, &pj, &id);
    assert_int_equal(engine_cancel(f->e, 1000, id, &canceled, NULL), RX_OK);
    assert_int_equal(canceled, 1);
    fixture_reopen(f);
    assert_int_equal(wait_done(f, 1000, id).status, RX_JOB_CANCELED);
    assert_false(group_alive(task));
    fixture_free(f);
}

static void
test_engine_uid_isolation(void **state)
{
    fixture *f = fixture_new(2, 1);
    char *argv[] = {"true", NULL};
    engine_spec s = cmd_spec(argv);
    engine_results *res = NULL;
    engine_job job, *jobs = NULL;
    char **paths = NULL;
    char warn[256];
    size_t n = 0;
    int flag = 0;
    int64_t id;

    (void)state;
    s.uid = 1000;
    id = submit(f, &s);
    assert_int_equal(engine_get(f->e, 1001, id, &job), RX_ENOENT);
    assert_int_equal(engine_get(f->e, 1001, id + 1000, &job), RX_ENOENT);
    assert_int_equal(engine_wait(f->e, 1001, id, 0, &job), RX_ENOENT);
    assert_int_equal(engine_cancel(f->e, 1001, id, &flag, &job), RX_ENOENT);
    assert_int_equal(engine_get_results(f->e, 1001, id, 0, &res), RX_ENOENT);
    assert_int_equal(engine_output_paths(f->e, 1001, id, &paths, &n), RX_ENOENT);
    assert_int_equal(engine_cleanup(f->e, 1001, id, 1, &flag, warn, sizeof(warn)), RX_ENOENT);
    assert_int_equal(engine_list(f->e, 1001, 0, 0, 0, &jobs, &n), RX_OK);
    assert_int_equal(n, 0);
    assert_null(jobs);
    /* The owner and root see it. */
    assert_int_equal(engine_get(f->e, 1000, id, &job), RX_OK);
    assert_int_equal(job.uid, 1000);
    assert_int_equal(engine_get(f->e, 0, id, &job), RX_OK);
    assert_int_equal(engine_list(f->e, 0, 0, 0, 0, &jobs, &n), RX_OK);
    assert_int_equal(n, 1);
    free(jobs);
    assert_int_equal(engine_list(f->e, 1000, 1u << RX_JOB_FINISHED, 0, 0, &jobs, &n), RX_OK);
    assert_int_equal(n, 0);
    assert_int_equal(engine_list(f->e, 1000, 1u << RX_JOB_QUEUED, 0, 0, &jobs, &n), RX_OK);
    assert_int_equal(n, 1);
    free(jobs);
    fixture_free(f);
}

typedef struct submitter {
    fixture *f;
    int64_t ids[50];
    double max_latency_s;
    int failures;
} submitter;

static void *
submit_many(void *arg)
{
    submitter *sb = arg;
    char *argv[] = {"true", NULL};
    engine_spec s = cmd_spec(argv);

    for (int i = 0; i < 50; i++) {
        engine_job job;
        char why[128];
        double t0 = now_s(), dt;

        if (engine_submit(sb->f->e, &s, &job, why, sizeof(why)) != RX_OK) {
            sb->failures++;
            continue;
        }
        dt = now_s() - t0;
        if (dt > sb->max_latency_s)
            sb->max_latency_s = dt;
        sb->ids[i] = job.id;
    }
    return NULL;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static void
test_engine_group_commit(void **state)
{
    fixture *f = fixture_new(2, 1);
    submitter sb[16];
    pthread_t th[16];
    int64_t all[800];
    engine_job *jobs = NULL;
    size_t n = 0, k = 0;
    double t0 = now_s(), dt, worst = 0;

    (void)state;
    for (int i = 0; i < 16; i++) {
        memset(&sb[i], 0, sizeof(sb[i]));
        sb[i].f = f;
        assert_int_equal(pthread_create(&th[i], NULL, submit_many, &sb[i]), 0);
    }
    for (int i = 0; i < 16; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(sb[i].failures, 0);
        if (sb[i].max_latency_s > worst)
            worst = sb[i].max_latency_s;
        for (int j = 0; j < 50; j++)
            all[k++] = sb[i].ids[j];
    }
    dt = now_s() - t0;
    print_message("group commit: 800 submissions from 16 threads in %.3f s (%.0f/s), worst "
                  "latency %.1f ms\n",
                  dt, 800 / dt, worst * 1000);
    qsort(all, 800, sizeof(all[0]), cmp_i64);
    for (size_t i = 1; i < 800; i++)
        assert_true(all[i] > all[i - 1]);
    /* Durable: a new engine on the directory sees every one. */
    fixture_reopen(f);
    assert_int_equal(engine_list(f->e, 1000, 0, 0, 0, &jobs, &n), RX_OK);
    assert_int_equal(n, 800);
    for (size_t i = 0; i < 800; i++)
        assert_int_equal(jobs[i].id, all[i]);
    free(jobs);
    fixture_free(f);
}

/* A child that stops itself (as a system-mode user can stop the daemon's helpers running as
 * them) is killed at the deadline and reaped, not waited for for ever; one that exits is
 * reaped with its status. */
static void
test_engine_wait_child_deadline(void **state)
{
    double t0;
    int status = 0;
    pid_t pid;

    (void)state;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        (void)raise(SIGSTOP);
        _exit(0);
    }
    t0 = now_s();
    assert_int_equal(rx__wait_child_deadline(pid, 300, &status), 1);
    assert_true(now_s() - t0 >= 0.25);
    assert_true(now_s() - t0 < 5.0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), -1); /* reaped */

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(7);
    assert_int_equal(rx__wait_child_deadline(pid, 10000, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 7);
    assert_int_equal(rx__wait_child_deadline(pid, 100, &status), -1); /* no such child */
}

static void
test_engine_many_tasks_no_leaks(void **state)
{
    int fds_before = count_open_fds();
    pid_t children_before[MAX_CHILDREN];
    int n_before = children_now(children_before);
    fixture *f = fixture_new(8, 0);
    char *argv[] = {"true", NULL};
    engine_spec s = cmd_spec(argv);
    engine_stats st;
    engine_job job;
    double t0 = now_s(), dt;
    int64_t id;

    (void)state;
    s.times_to_run = 1000;
    id = submit(f, &s);
    job = wait_done(f, 1000, id);
    dt = now_s() - t0;
    print_message("1000 tasks (slots 8): %.2f s, %.0f tasks/s\n", dt, 1000 / dt);
    assert_int_equal(job.status, RX_JOB_FINISHED);
    assert_int_equal(job.ok, 1000);
    engine_get_stats(f->e, &st);
    assert_int_equal(st.tasks_started_total, 1000);
    assert_int_equal(st.tasks_running, 0);
    /* The last supervisors exit after the daemon's "k" (their end committed) and are reaped by
     * the scheduler's next turn: a moment after the job ends, not before it. */
    for (int i = 0; i < 500 && new_zombie_children(children_before, n_before) != 0; i++)
        sleep_ms(10);
    assert_int_equal(new_zombie_children(children_before, n_before), 0);
    fixture_free(f);
    assert_int_equal(count_open_fds(), fds_before);
}

/* queued_jobs_per_user: a uid's jobs not yet ended, counted as they are created, end (cancel)
 * and are recovered by the next engine_open; other uids are not held back. */
static void
test_engine_queued_per_user(void **state)
{
    char *argv[] = {"true", NULL};
    engine_spec s = cmd_spec(argv);
    rx_limits lim;
    engine_job job;
    int64_t first = 0;
    int canceled = 0;
    char why[256];
    fixture *f;

    (void)state;
    rx_limits_default(&lim);
    assert_int_equal(rx_limits_set(&lim, "queued_jobs_per_user=3", why, sizeof(why)), RX_OK);
    f = fixture_with(1, 1, &lim); /* hold: nothing runs, every job stays QUEUED */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_OK);
        if (i == 0)
            first = job.id;
    }
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_ELIMIT);
    assert_string_equal(why, "queued_jobs_per_user limit exceeded: 4 > 3 jobs (rxjobd --limit "
                             "queued_jobs_per_user=...)");
    s.uid = 1001;
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_OK);
    s.uid = 1000;
    /* One ends (canceled): room for one more. */
    assert_int_equal(engine_cancel(f->e, 1000, first, &canceled, &job), RX_OK);
    assert_int_equal(engine_wait(f->e, 1000, first, 10000, &job), RX_OK);
    assert_int_equal(job.status, RX_JOB_CANCELED);
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_OK);
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_ELIMIT);
    /* A restart counts the recovered jobs again. */
    fixture_reopen(f);
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_ELIMIT);
    s.uid = 1001;
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_OK);
    fixture_free(f);
}

static void
test_engine_limits(void **state)
{
    fixture *f = fixture_new(2, 1);
    char *argv[] = {"true", NULL};
    char *empty[] = {NULL};
    char *env_bad[] = {"NOEQUALS", NULL};
    engine_spec s = cmd_spec(argv);
    rx_buf args[2] = {{"a", 1}, {"b\0c", 3}};
    engine_job job;
    char why[256];

    (void)state;
    s.times_to_run = 1000001;
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_ETOOBIG);
    assert_non_null(strstr(why, "tasks_per_job limit exceeded: 1000001 > 1000000 tasks"));
    s.times_to_run = 1000000;
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_OK);
    s.times_to_run = 3;
    s.has_args = 1;
    s.args = args;
    s.n_args = 1;
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_ECOUNT);
    s.times_to_run = -1;
    s.n_args = 2;
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_EINVAL);
    assert_non_null(strstr(why, "NUL"));
    s.n_args = 0;
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_EINVAL);
    s = cmd_spec(empty);
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_EINVAL);
    s = cmd_spec(argv);
    s.env = env_bad;
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_EINVAL);
    s = cmd_spec(argv);
    s.execution_timeout_s = -1;
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_EINVAL);
    s = cmd_spec(argv);
    s.cwd = "relative/dir";
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_EINVAL);
    /* Neither elem_args nor times_to_run: num_tasks tasks. */
    s = cmd_spec(argv);
    s.num_tasks = 3;
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_OK);
    assert_int_equal(job.n_tasks, 3);
    fixture_free(f);
}

static void
test_engine_args_env_cwd_stdin(void **state)
{
    fixture *f = fixture_new(4, 0);
    char *argv[] = {"sh",
                    "-c",
                    "printf '%s|%s|%s|' \"$1\" \"$GREETING\" \"$(pwd)\" > $RXJOB_RESULT; "
                    "cat >> $RXJOB_RESULT; echo out-$RXJOB_TASK_INDEX; echo err >&2",
                    "sh",
                    "<{}>",
                    NULL};
    char *env[] = {"GREETING=hello", NULL};
    rx_buf args[3] = {{"x y", 3}, {"", 0}, {"*", 1}};
    engine_spec s = cmd_spec(argv);
    engine_results *res;
    char **paths = NULL;
    char buf[64];
    size_t n = 0;
    FILE *fp;
    int64_t id;

    (void)state;
    s.args = args;
    s.n_args = 3;
    s.has_args = 1;
    s.env = env;
    s.cwd = "/tmp";
    s.stdin_data = "IN";
    s.stdin_len = 2;
    id = run_job(f, &s, RX_JOB_FINISHED);
    assert_int_equal(engine_output_paths(f->e, 1000, id, &paths, &n), RX_OK);
    assert_int_equal(n, 3);
    fp = fopen(paths[2], "r");
    assert_non_null(fp);
    assert_non_null(fgets(buf, sizeof(buf), fp));
    assert_string_equal(buf, "out-2\n");
    assert_non_null(fgets(buf, sizeof(buf), fp));
    assert_string_equal(buf, "err\n");
    fclose(fp);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    res = results(f, 1000, id, 1);
    assert_string_equal(res->slots[0].value, "<x y>|hello|/tmp|IN");
    assert_string_equal(res->slots[1].value, "<>|hello|/tmp|IN");
    assert_string_equal(res->slots[2].value, "<*>|hello|/tmp|IN");
    engine_results_free(res);
    fixture_free(f);
}

static void
test_engine_command_not_found(void **state)
{
    fixture *f = fixture_new(2, 0);
    char *argv[] = {"/no/such/program-rxjob", NULL};
    engine_spec s = cmd_spec(argv);
    engine_results *res;

    (void)state;
    res = run_collect(f, &s, RX_JOB_FAILED);
    assert_int_equal(res->slots[0].state, RX_TASK_START_FAILED);
    assert_string_equal(res->slots[0].error, "command not found: '/no/such/program-rxjob'");
    engine_results_free(res);
    fixture_free(f);
}

/* Read task idx's t<idx>.out of job id (kept: the job is not cleaned up). */
static char *
read_out(fixture *f, int64_t id, uint64_t idx, size_t *out_len)
{
    char dir[PATH_MAX], path[PATH_MAX];
    void *data = NULL;

    assert_int_equal(spool_job_dir(f->dir, id, dir, sizeof(dir)), 0);
    assert_int_equal(spool_task_path(dir, idx, ".out", path, sizeof(path)), 0);
    assert_int_equal(spool_read_file(path, 64 * 1024 * 1024, &data, out_len), RX_OK);
    return data;
}

/* output_bytes: 50 MB of output is cut at 1 MiB with a marker line naming the limit and what
 * was discarded, and the task still FINISHED (OK); output under the cap is kept whole, stdout
 * and stderr alike, with no marker. */
static void
test_engine_output_cap(void **state)
{
    fixture *f = fixture_new_limits(2, 1048576, 0);
    char *big_argv[] = {"sh", "-c", "head -c 50000000 /dev/zero; echo tail", NULL};
    char *small_argv[] = {"sh", "-c", "echo out; echo err >&2", NULL};
    rx_buf args[1] = {{"x", 1}};
    static const char marker[] = "\n[rxjob: output cut at 1048576 bytes: output_bytes limit; "
                                 "48951429 bytes discarded]\n";
    engine_spec s = cmd_spec(big_argv);
    engine_results *res;
    char *out;
    size_t len;
    int64_t id;

    (void)state;
    s.auto_cleanup = 0;
    id = run_job(f, &s, RX_JOB_FINISHED);
    out = read_out(f, id, 0, &len);
    assert_int_equal(len, 1048576 + strlen(marker));
    for (size_t i = 0; i < 1048576; i++)
        if (out[i] != '\0')
            fail_msg("byte %zu of the kept output is 0x%02x", i, (unsigned char)out[i]);
    assert_memory_equal(out + 1048576, marker, strlen(marker));
    rx__free(out);
    res = results(f, 1000, id, 1);
    assert_int_equal(res->slots[0].state, RX_TASK_OK);
    engine_results_free(res);

    s = cmd_spec(small_argv);
    s.auto_cleanup = 0;
    id = run_job(f, &s, RX_JOB_FINISHED);
    out = read_out(f, id, 0, &len);
    assert_int_equal(len, 8);
    assert_memory_equal(out, "out\nerr\n", 8);
    rx__free(out);

    /* Function work goes through the same supervisor: its output is relayed too. */
    s = fn_spec("echo_arg", args, 1);
    s.auto_cleanup = 0;
    id = run_job(f, &s, RX_JOB_FINISHED);
    out = read_out(f, id, 0, &len);
    assert_int_equal(len, 0);
    rx__free(out);
    res = results(f, 1000, id, 1);
    assert_string_equal(res->slots[0].value, "x");
    engine_results_free(res);
    fixture_free(f);
}

/* With an output cap, a task that writes without end is still drained (it never blocks), its
 * time limit still fires, and a cancel still stops it. */
static void
test_engine_output_cap_timeout_cancel(void **state)
{
    fixture *f = fixture_new_limits(2, 65536, 0);
    char *argv[] = {"yes", "rxjob", NULL};
    engine_spec s = cmd_spec(argv);
    engine_results *res;
    engine_job job;
    char *out;
    size_t len;
    int canceled = 0;
    int64_t id;
    double t0;

    (void)state;
    s.auto_cleanup = 0;
    s.execution_timeout_s = 1;
    t0 = now_s();
    id = submit(f, &s);
    job = wait_done(f, 1000, id);
    assert_true(now_s() - t0 < 20);
    assert_int_equal(job.status, RX_JOB_FAILED);
    out = read_out(f, id, 0, &len);
    assert_true(len > 65536);
    assert_true(len < 65536 + 200);
    assert_memory_equal(out, "rxjob\nrxjob\n", 12);
    assert_non_null(memmem(out + 65536, len - 65536,
                           "[rxjob: output cut at 65536 bytes: output_bytes limit; ", 55));
    rx__free(out);
    res = results(f, 1000, id, 1);
    assert_int_equal(res->slots[0].state, RX_TASK_TIMEOUT);
    engine_results_free(res);

    s = cmd_spec(argv);
    id = submit(f, &s);
    (void)wait_running(f, 1000, id);
    sleep_ms(300);
    t0 = now_s();
    assert_int_equal(engine_cancel(f->e, 1000, id, &canceled, NULL), RX_OK);
    assert_int_equal(canceled, 1);
    assert_int_equal(wait_done(f, 1000, id).status, RX_JOB_CANCELED);
    assert_true(now_s() - t0 < 20);
    fixture_free(f);
}

/* result_bytes: a result over the limit fails its task (ERROR) with a message naming the limit;
 * one within it is kept. Command and function work alike. */
static void
test_engine_result_limit(void **state)
{
    fixture *f = fixture_new_limits(2, 0, 10);
    char *argv[] = {"sh", "-c", "printf '%s' \"$1\" > \"$RXJOB_RESULT\"", "sh", NULL};
    rx_buf args[2] = {{"0123456789", 10}, {"0123456789a", 11}};
    engine_spec s = cmd_spec(argv);
    engine_results *res;

    (void)state;
    s.args = args;
    s.n_args = 2;
    s.has_args = 1;
    res = run_collect(f, &s, RX_JOB_FAILED);
    assert_int_equal(res->slots[0].state, RX_TASK_OK);
    assert_string_equal(res->slots[0].value, "0123456789");
    assert_int_equal(res->slots[1].state, RX_TASK_ERROR);
    assert_string_equal(res->slots[1].error,
                        "result of 11 bytes is over the result_bytes limit of 10 bytes");
    engine_results_free(res);

    s = fn_spec("echo_arg", args, 2);
    res = run_collect(f, &s, RX_JOB_FAILED);
    assert_int_equal(res->slots[0].state, RX_TASK_OK);
    assert_int_equal(res->slots[1].state, RX_TASK_ERROR);
    assert_non_null(strstr(res->slots[1].error, "result_bytes limit of 10 bytes"));
    engine_results_free(res);
    fixture_free(f);
}

static void
test_engine_function_work(void **state)
{
    fixture *f = fixture_new(4, 0);
    rx_buf args[2] = {{"one", 3}, {"t\0o", 3}};
    engine_spec s = fn_spec("echo_arg", args, 2);
    engine_results *res;

    (void)state;
    res = run_collect(f, &s, RX_JOB_FINISHED);
    assert_string_equal(res->slots[0].value, "one");
    assert_int_equal(res->slots[1].value_len, 3);
    assert_memory_equal(res->slots[1].value, "t\0o", 3);
    engine_results_free(res);

    s = fn_spec("fail", args, 1);
    res = run_collect(f, &s, RX_JOB_FAILED);
    assert_int_equal(res->slots[0].state, RX_TASK_ERROR);
    assert_string_equal(res->slots[0].error, "bad input: one");
    engine_results_free(res);

    s = fn_spec("nosuch", args, 1);
    res = run_collect(f, &s, RX_JOB_FAILED);
    assert_int_equal(res->slots[0].state, RX_TASK_START_FAILED);
    engine_results_free(res);
    fixture_free(f);
}

/* A store of schema version 1 (before chunks) is upgraded at open: its jobs read as they did
 * (task_chunk_size 1: one process per task), a task it recorded keeps its result in t<i>.result,
 * and the rest of its job runs; the version reads the current one. Chunked function work then runs
 * with its results in the chunk's file. */
static void
test_engine_schema_1_upgrade(void **state)
{
    fixture *f = fixture_new(2, 1);
    char *argv[] = {self_exe, NULL};
    rx_buf args[3] = {{"zero", 4}, {"one", 3}, {"two", 3}};
    engine_spec s = cmd_spec(argv);
    engine_results *res;
    char path[PATH_MAX + 64], sql[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    FILE *fp;
    int64_t id;

    (void)state;
    s.kind = RX_WORK_FUNCTION;
    s.function_name = "echo_arg";
    s.args = args;
    s.n_args = 3;
    s.has_args = 1;
    id = submit(f, &s);
    engine_close(f->e);
    f->e = NULL;
    /* Back to version 1: the columns version 2 added go; task 0 ended OK under version 1. */
    (void)snprintf(path, sizeof(path), "%s/jobs.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    (void)snprintf(sql, sizeof(sql),
                   "ALTER TABLE jobs DROP COLUMN task_chunk_size;"
                   "ALTER TABLE tasks DROP COLUMN result_run;"
                   "ALTER TABLE tasks DROP COLUMN result_off;"
                   "ALTER TABLE tasks DROP COLUMN result_len;"
                   "ALTER TABLE tasks DROP COLUMN run_count;"
                   "PRAGMA user_version = 1;"
                   "INSERT INTO tasks (job_id, idx, state, task_state, exit_status) "
                   "VALUES (%" PRId64 ", 0, 1, 0, 0);"
                   "UPDATE jobs SET status = 1 WHERE id = %" PRId64 ";",
                   id, id);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    (void)snprintf(path, sizeof(path), "%s/spool/%" PRId64, f->dir, id);
    assert_int_equal(mkdir(path, 0700), 0);
    (void)snprintf(path, sizeof(path), "%s/spool/%" PRId64 "/t0.result", f->dir, id);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs("from version 1", fp) >= 0, 1);
    fclose(fp);

    f->opts.hold = 0;
    fixture_open(f);
    assert_int_equal(wait_done(f, 1000, id).status, RX_JOB_FINISHED);
    res = results(f, 1000, id, 1);
    assert_string_equal(res->slots[0].value, "from version 1");
    assert_string_equal(res->slots[1].value, "one");
    assert_string_equal(res->slots[2].value, "two");
    assert_int_equal(res->slots[1].result_run, 0); /* chunk size 1: t1.result */
    engine_results_free(res);

    (void)snprintf(path, sizeof(path), "%s/jobs.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), STORE_SCHEMA_VERSION);
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* Now in chunks: three tasks, one supervisor, the results in t<first>.results. */
    s.task_chunk_size = 3;
    id = submit(f, &s);
    assert_int_equal(wait_done(f, 1000, id).status, RX_JOB_FINISHED);
    res = results(f, 1000, id, 1);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(res->slots[i].result_run, 1);
        assert_int_equal(res->slots[i].result_len, args[i].len);
        assert_memory_equal(res->slots[i].value, args[i].data, args[i].len);
    }
    engine_results_free(res);
    fixture_free(f);
}

/* A running chunk is one row for its tasks (schema version 3); a daemon of version 2 wrote a row
 * per task naming the same supervisor. Either way a restarted engine adopts the run whole: its
 * tasks count as running, and they end with their results. */
static void
test_engine_recover_chunk_rows(void **state)
{
    fixture *f = fixture_new(2, 0);
    char *argv[] = {self_exe, NULL};
    rx_buf args[4] = {{"a", 1}, {"bb", 2}, {"ccc", 3}, {"dddd", 4}};
    engine_spec s = cmd_spec(argv);
    engine_results *res;
    engine_job job;
    char path[PATH_MAX + 64], sql[1024];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t id, shim_pid, shim_start;
    double started_s;

    (void)state;
    s.kind = RX_WORK_FUNCTION;
    s.function_name = "nap_echo";
    s.args = args;
    s.n_args = 4;
    s.has_args = 1;
    s.task_chunk_size = 4;
    id = submit(f, &s);
    (void)wait_running(f, 1000, id);
    engine_close(f->e); /* the run goes on */
    f->e = NULL;
    (void)snprintf(path, sizeof(path), "%s/jobs.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT idx, run_count, shim_pid, shim_start, started_s "
                                        "FROM tasks WHERE state = 0",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, 0), 0);
    assert_int_equal(sqlite3_column_int64(st, 1), 4); /* one row for the four */
    shim_pid = sqlite3_column_int64(st, 2);
    shim_start = sqlite3_column_int64(st, 3);
    started_s = sqlite3_column_double(st, 4);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
    fixture_open(f); /* that row: four tasks running */
    assert_int_equal(engine_get(f->e, 1000, id, &job), RX_OK);
    assert_int_equal(job.status, RX_JOB_RUNNING);
    assert_int_equal(job.running, 4);
    engine_close(f->e);
    f->e = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    /* As version 2 wrote it: a row per task. */
    (void)snprintf(sql, sizeof(sql),
                   "DELETE FROM tasks WHERE job_id = %" PRId64 ";"
                   "INSERT INTO tasks (job_id, idx, state, shim_pid, shim_start, started_s) "
                   "VALUES (%" PRId64 ", 0, 0, %" PRId64 ", %" PRId64 ", %f), "
                   "(%" PRId64 ", 1, 0, %" PRId64 ", %" PRId64 ", %f), "
                   "(%" PRId64 ", 2, 0, %" PRId64 ", %" PRId64 ", %f), "
                   "(%" PRId64 ", 3, 0, %" PRId64 ", %" PRId64 ", %f);",
                   id, id, shim_pid, shim_start, started_s, id, shim_pid, shim_start, started_s, id,
                   shim_pid, shim_start, started_s, id, shim_pid, shim_start, started_s);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    fixture_open(f);
    assert_int_equal(engine_get(f->e, 1000, id, &job), RX_OK);
    assert_int_equal(job.status, RX_JOB_RUNNING);
    assert_int_equal(job.running, 4);
    job = wait_done(f, 1000, id);
    assert_int_equal(job.status, RX_JOB_FINISHED);
    assert_int_equal(job.ok, 4);
    res = results(f, 1000, id, 1);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(res->slots[i].state, RX_TASK_OK);
        assert_int_equal(res->slots[i].value_len, args[i].len);
        assert_memory_equal(res->slots[i].value, args[i].data, args[i].len);
    }
    engine_results_free(res);
    fixture_free(f);
}

/* A run's exit record (spool.h spool_run_exit): written and read back whole; a task's own record
 * reads as a run of one; anything malformed, or another run's, is refused (RX_EINVAL), never
 * half-read: the job directory is the user's in system mode. */
static void
test_engine_run_exit_record(void **state)
{
    char dir[] = "/tmp/rxjob-runrec-XXXXXX";
    char path[PATH_MAX];
    spool_exit tasks[2];
    uint64_t idx[2] = {40, 42};
    spool_run_exit rec = {.go = 1, .first = 40, .count = 5, .n = 2, .idx = idx, .tasks = tasks};
    spool_run_exit back;
    static const char *const bad[] = {
        "",
        "rxjob-chunk 1\n",
        "rxjob-chunk 1\ngo 1\nfirst 41\ncount 5\ntasks 0\n",  /* another run's */
        "rxjob-chunk 1\ngo 1\nfirst 40\ncount 6\ntasks 0\n",  /* another count */
        "rxjob-chunk 1\ngo 1\nfirst 40\ncount 5\ntasks 6\n",  /* more entries than tasks */
        "rxjob-chunk 1\ngo 1\nfirst 40\ncount 5\ntasks 1\n",  /* an entry missing */
        "rxjob-chunk 1\ngo 1\nfirst 40\ncount 5\ntasks 0\nx", /* bytes after the end */
        "rxjob-chunk 1\ngo 1\nfirst 40\ncount 5\ntasks 1\ntask 45\nresult_at 0 0 0\nstate OK\n"
        "exit_status 0\nsignal 0\ntask_pid 1\nstarted_s 1\nended_s 2\nerror 0\n", /* out of run */
        "rxjob-chunk 1\ngo 1\nfirst 40\ncount 5\ntasks 2\ntask 41\nresult_at 0 0 0\nstate OK\n"
        "exit_status 0\nsignal 0\ntask_pid 1\nstarted_s 1\nended_s 2\nerror 0\ntask 41\n"
        "result_at 0 0 0\nstate OK\nexit_status 0\nsignal 0\ntask_pid 1\nstarted_s 1\n"
        "ended_s 2\nerror 0\n", /* not ascending */
        "rxjob-chunk 1\ngo 1\nfirst 40\ncount 5\ntasks 1\ntask 41\nresult_at 0 0 0\nstate OK\n"
        "exit_status 0\nsignal 0\ntask_pid 1\nstarted_s 1\nended_s 2\nerror 99\nshort", /* cut */
        "rxjob-chunk 1\ngo 1\nfirst 40\ncount 5\ntasks 1\ntask 41\nresult_at 1 9223372036854775807 "
        "9\nstate OK\nexit_status 0\nsignal 0\ntask_pid 1\nstarted_s 1\nended_s 2\nerror 0\n",
        "rxjob-chunk 1\ngo 1\nfirst 40\ncount 5\ntasks 1\ntask 41\nresult_at 0 0 0\nstate NOPE\n"
        "exit_status 0\nsignal 0\ntask_pid 1\nstarted_s 1\nended_s 2\nerror 0\n",
    };

    (void)state;
    assert_non_null(mkdtemp(dir));
    memset(tasks, 0, sizeof(tasks));
    tasks[0].go = 1;
    tasks[0].state = RX_TASK_OK;
    tasks[0].task_pid = 77;
    tasks[0].started_s = 1.5;
    tasks[0].ended_s = 2.5;
    tasks[0].result_run = 41;
    tasks[0].result_off = 3;
    tasks[0].result_len = 17;
    tasks[1].go = 1;
    tasks[1].state = RX_TASK_SIGNALED;
    tasks[1].exit_status = -1;
    tasks[1].signal = 11;
    tasks[1].error = "killed by signal 11 (SIGSEGV)\nwith a newline";
    assert_int_equal(spool_run_exit_write(dir, &rec), RX_OK);
    assert_int_equal(spool_run_exit_read(dir, 40, 5, &back), RX_OK);
    assert_int_equal(back.go, 1);
    assert_int_equal(back.n, 2);
    assert_int_equal(back.idx[0], 40);
    assert_int_equal(back.idx[1], 42);
    assert_int_equal(back.tasks[0].state, RX_TASK_OK);
    assert_int_equal(back.tasks[0].result_run, 41);
    assert_int_equal(back.tasks[0].result_off, 3);
    assert_int_equal(back.tasks[0].result_len, 17);
    assert_int_equal(back.tasks[0].task_pid, 77);
    assert_null(back.tasks[0].error);
    assert_int_equal(back.tasks[1].state, RX_TASK_SIGNALED);
    assert_int_equal(back.tasks[1].signal, 11);
    assert_string_equal(back.tasks[1].error, tasks[1].error);
    spool_run_exit_free(&back);
    /* The same file read as another run's. */
    assert_int_equal(spool_run_exit_read(dir, 40, 4, &back), RX_EINVAL);
    assert_int_equal(spool_run_exit_read(dir, 39, 5, &back), RX_ENOENT);

    /* A task's own record: a run of one (go 0: no entry). */
    tasks[1].go = 0;
    assert_int_equal(spool_exit_write(dir, 7, &tasks[1]), RX_OK);
    assert_int_equal(spool_run_exit_read(dir, 7, 1, &back), RX_OK);
    assert_int_equal(back.go, 0);
    assert_int_equal(back.n, 0);
    spool_run_exit_free(&back);
    assert_int_equal(spool_run_exit_read(dir, 7, 2, &back), RX_EINVAL);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        FILE *fp;

        (void)snprintf(path, sizeof(path), "%s/t40.exit", dir);
        fp = fopen(path, "w");
        assert_non_null(fp);
        assert_int_equal(fwrite(bad[i], 1, strlen(bad[i]), fp), strlen(bad[i]));
        fclose(fp);
        if (spool_run_exit_read(dir, 40, 5, &back) != RX_EINVAL)
            fail_msg("malformed record %zu was read", i);
    }
    (void)unlink(path);
    (void)snprintf(path, sizeof(path), "%s/t7.exit", dir);
    (void)unlink(path);
    assert_int_equal(rmdir(dir), 0);
}

static void
test_engine_cleanup(void **state)
{
    fixture *f = fixture_new(2, 0);
    char *ok_argv[] = {"true", NULL};
    char *bad_argv[] = {"false", NULL};
    char *long_argv[] = {"sleep", "30", NULL};
    engine_spec ok = cmd_spec(ok_argv), bad = cmd_spec(bad_argv), slow = cmd_spec(long_argv);
    char warn[256];
    engine_job job;
    int cleaned = -1;
    int64_t a, b, c;

    (void)state;
    a = submit(f, &ok);
    b = submit(f, &bad);
    c = submit(f, &slow);
    assert_int_equal(wait_done(f, 1000, a).status, RX_JOB_FINISHED);
    assert_int_equal(wait_done(f, 1000, b).status, RX_JOB_FAILED);
    assert_int_equal(engine_cleanup(f->e, 1000, a, 0, &cleaned, warn, sizeof(warn)), RX_OK);
    assert_int_equal(cleaned, 0);
    assert_non_null(strstr(warn, "force"));
    assert_non_null(strstr(warn, "rx_get_job_results"));
    /* True whether or not its results were collected (here they are, without cleanup). */
    engine_results_free(results(f, 1000, a, 0));
    assert_int_equal(engine_cleanup(f->e, 1000, a, 0, &cleaned, warn, sizeof(warn)), RX_OK);
    assert_int_equal(cleaned, 0);
    assert_non_null(strstr(warn, "is FINISHED: cleaning it up would delete its results"));
    assert_null(strstr(warn, "not collected"));
    assert_non_null(strstr(warn, "force"));
    assert_non_null(strstr(warn, "rx_get_job_results"));
    assert_int_equal(engine_cleanup(f->e, 1000, a, 1, &cleaned, warn, sizeof(warn)), RX_OK);
    assert_int_equal(cleaned, 1);
    assert_int_equal(engine_get(f->e, 1000, a, &job), RX_ENOENT);
    assert_int_equal(engine_cleanup(f->e, 1000, b, 0, &cleaned, warn, sizeof(warn)), RX_OK);
    assert_int_equal(cleaned, 1);
    (void)wait_running(f, 1000, c);
    assert_int_equal(engine_cleanup(f->e, 1000, c, 0, &cleaned, warn, sizeof(warn)), RX_OK);
    assert_int_equal(cleaned, 0);
    assert_non_null(strstr(warn, "RUNNING"));
    assert_int_equal(engine_cleanup(f->e, 1000, c, 1, &cleaned, warn, sizeof(warn)), RX_OK);
    assert_int_equal(cleaned, 1);
    assert_int_equal(engine_get(f->e, 1000, c, &job), RX_ENOENT);
    /* Removed once its process is gone. */
    assert_spool_gone(f, c, 3000);
    fixture_free(f);
}

/* Two collectors with auto-cleanup race: exactly one gets the results. */
typedef struct racer {
    fixture *f;
    int64_t id;
    rx_err err;
} racer;

static void *
collect(void *arg)
{
    racer *r = arg;
    engine_results *res = NULL;

    r->err = engine_get_results(r->f->e, 1000, r->id, 1, &res);
    (void)engine_results_end(res, 1);
    return NULL;
}

static void
test_engine_results_race(void **state)
{
    fixture *f = fixture_new(2, 0);
    char *argv[] = {"true", NULL};
    engine_spec s = cmd_spec(argv);

    (void)state;
    for (int round = 0; round < 20; round++) {
        racer r[2];
        pthread_t th[2];
        int64_t id = run_job(f, &s, RX_JOB_FINISHED);

        for (int k = 0; k < 2; k++) {
            r[k].f = f;
            r[k].id = id;
            assert_int_equal(pthread_create(&th[k], NULL, collect, &r[k]), 0);
        }
        for (int k = 0; k < 2; k++)
            assert_int_equal(pthread_join(th[k], NULL), 0);
        assert_true((r[0].err == RX_OK && r[1].err == RX_ENOENT) ||
                    (r[1].err == RX_OK && r[0].err == RX_ENOENT));
    }
    fixture_free(f);
}

static void
test_engine_wait_timeout(void **state)
{
    fixture *f = fixture_new(1, 0);
    char *argv[] = {"sleep", "1", NULL};
    engine_spec s = cmd_spec(argv);
    engine_job job;
    double t0;
    int64_t id = submit(f, &s);

    (void)state;
    t0 = now_s();
    assert_int_equal(engine_wait(f->e, 1000, id, 200, &job), RX_ETIMEDOUT);
    assert_true(now_s() - t0 >= 0.19);
    assert_true(job.status == RX_JOB_QUEUED || job.status == RX_JOB_RUNNING);
    assert_int_equal(wait_done(f, 1000, id).status, RX_JOB_FINISHED);
    fixture_free(f);
}

/* Every ended task's slot has its start and end (UTC seconds, from the store) and its exit
 * status: 0 for an OK command, the status for a failed one, -1 for function work (no command)
 * and for a task that never ran (no times either). */
static void
test_engine_slot_times(void **state)
{
    fixture *f = fixture_new(2, 0);
    char *argv[] = {"sh", "-c", "sleep 0.3; test $RXJOB_TASK_INDEX -ne 1 || exit 3", NULL};
    rx_buf args[1] = {{"one", 3}};
    engine_spec s = cmd_spec(argv);
    engine_results *res;
    double before = (double)time(NULL) - 1;

    (void)state;
    s.times_to_run = 3;
    s.num_tasks = 1;
    s.continue_on_failure = 0; /* task 2 never runs */
    res = results(f, 1000, run_job(f, &s, RX_JOB_FAILED), 0);
    assert_int_equal(res->slots[0].state, RX_TASK_OK);
    assert_int_equal(res->slots[0].exit_status, 0);
    assert_int_equal(res->slots[1].state, RX_TASK_EXIT);
    assert_int_equal(res->slots[1].exit_status, 3);
    for (size_t i = 0; i < 2; i++) {
        const engine_slot *sl = &res->slots[i];

        assert_true(sl->started_s >= before);
        assert_true(sl->ended_s - sl->started_s >= 0.25);
        assert_true(sl->ended_s - sl->started_s < 30);
    }
    assert_true(res->slots[1].started_s >= res->slots[0].ended_s - 0.001);
    assert_int_equal(res->slots[2].state, RX_TASK_NOT_RUN);
    assert_int_equal(res->slots[2].exit_status, -1);
    assert_true(res->slots[2].started_s == 0 && res->slots[2].ended_s == 0);
    engine_results_free(res);

    s = fn_spec("echo_arg", args, 1);
    res = results(f, 1000, run_job(f, &s, RX_JOB_FINISHED), 0);
    assert_int_equal(res->slots[0].state, RX_TASK_OK);
    assert_int_equal(res->slots[0].exit_status, -1);
    assert_true(res->slots[0].started_s >= before);
    assert_true(res->slots[0].ended_s >= res->slots[0].started_s);
    engine_results_free(res);
    fixture_free(f);
}

/* A store failure reaches the caller with its cause (SQLite's message), not only "job store
 * error": here another connection holds the write lock past the busy timeout. */
static void
test_engine_store_error_cause(void **state)
{
    fixture *f = fixture_new(1, 1);
    char *argv[] = {"true", NULL};
    engine_spec s = cmd_spec(argv);
    char path[PATH_MAX], why[512] = "";
    sqlite3 *db = NULL;
    engine_job job;
    int canceled = -1;
    int64_t id;

    (void)state;
    id = submit(f, &s);
    scratch(f, "jobs.db", path, sizeof(path));
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_ESTORE);
    assert_non_null(strstr(why, "could not be recorded"));
    assert_non_null(strstr(why, "database is locked"));
    assert_int_equal(engine_cancel(f->e, 1000, id, &canceled, &job), RX_ESTORE);
    assert_non_null(strstr(engine_errmsg(), "database is locked"));
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(engine_cancel(f->e, 1000, id, &canceled, &job), RX_OK);
    assert_int_equal(canceled, 1);
    assert_string_equal(engine_errmsg(), "");
    fixture_free(f);
}

/* While results are held (being streamed), the job's spool stays, even if the job is cleaned
 * up meanwhile; it goes when the collection ends. */
static void
test_engine_results_keep_spool(void **state)
{
    fixture *f = fixture_new(2, 0);
    char *argv[] = {"sh", "-c", "printf kept > $RXJOB_RESULT", NULL};
    engine_spec s = cmd_spec(argv);
    engine_results *res;
    char path[PATH_MAX + 64];
    char warn[256];
    struct stat st;
    int cleaned = -1;
    int64_t id;

    (void)state;
    s.auto_cleanup = 0;
    id = run_job(f, &s, RX_JOB_FINISHED);
    res = results(f, 1000, id, -1);
    assert_string_equal(res->slots[0].value, "kept");
    assert_int_equal(engine_cleanup(f->e, 1000, id, 1, &cleaned, warn, sizeof(warn)), RX_OK);
    assert_int_equal(cleaned, 1);
    (void)snprintf(path, sizeof(path), "%s/spool/%" PRId64 "/t0.result", f->dir, id);
    assert_int_equal(stat(path, &st), 0); /* still readable by the collection */
    assert_int_equal(engine_results_end(res, 1), RX_OK);
    assert_spool_gone(f, id, 3000);
    fixture_free(f);
}

static int
path_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

/* A canceled job's big spool is removed off the scheduler's thread: another job's tasks start
 * and end while it is being removed (they waited for the whole removal before). */
static void
test_engine_removal_does_not_stall(void **state)
{
    fixture *f = fixture_new(1, 0);
    char ready[PATH_MAX], cmd[2 * PATH_MAX], dir[PATH_MAX + 32], gone[PATH_MAX + 64];
    char *argv_a[] = {"sh", "-c", cmd, NULL};
    char *argv_b[] = {"true", NULL};
    engine_spec a = cmd_spec(argv_a), b = cmd_spec(argv_b);
    engine_job job;
    int canceled = 0, b_done_during = 0;
    double t0;
    int64_t ida, idb;

    (void)state;
    scratch(f, "ready", ready, sizeof(ready));
    /* 100 000 files: removing them takes about 0.7 s here, creating them about 3 s. */
    (void)snprintf(cmd, sizeof(cmd),
                   "d=$(dirname \"$RXJOB_RESULT\")/many; mkdir \"$d\" && cd \"$d\" && "
                   "seq 1 100000 | xargs touch && touch %s; exec sleep 60",
                   ready);
    ida = submit(f, &a);
    b.times_to_run = 2;
    idb = submit(f, &b); /* queued behind a: one slot */
    for (int i = 0; i < 12000 && !path_exists(ready); i++)
        sleep_ms(10);
    assert_true(path_exists(ready));
    assert_int_equal(engine_cancel(f->e, 1000, ida, &canceled, NULL), RX_OK);
    assert_int_equal(canceled, 1);
    assert_int_equal(wait_done(f, 1000, ida).status, RX_JOB_CANCELED);
    (void)snprintf(dir, sizeof(dir), "%s/spool/%" PRId64, f->dir, ida);
    (void)snprintf(gone, sizeof(gone), "%s.gone", dir);
    /* Until the removal ends: has b finished meanwhile? */
    t0 = now_s();
    while (now_s() - t0 < 60 && (path_exists(dir) || path_exists(gone))) {
        assert_int_equal(engine_get(f->e, 1000, idb, &job), RX_OK);
        if (job.status == RX_JOB_FINISHED) {
            b_done_during = 1;
            break;
        }
        sleep_ms(2);
    }
    if (!b_done_during)
        fail_msg("job %" PRId64 "'s 2 tasks waited %.2f s for job %" PRId64
                 "'s spool removal to end",
                 idb, now_s() - t0, ida);
    assert_int_equal(wait_done(f, 1000, idb).status, RX_JOB_FINISHED);
    for (int i = 0; i < 3000 && (path_exists(dir) || path_exists(gone)); i++)
        sleep_ms(10);
    assert_false(path_exists(dir));
    assert_false(path_exists(gone));
    fixture_free(f);
}

/* At start, spool directories without a job are removed (a crash left them: removal queued, not
 * done), and so are *.gone ones; the directory of a job created with the next id is its own. */
static void
test_engine_orphan_spools_removed(void **state)
{
    fixture *f = fixture_new(2, 0);
    char *argv[] = {"sh", "-c", "printf mine > $RXJOB_RESULT; ls $(dirname $RXJOB_RESULT)", NULL};
    engine_spec s = cmd_spec(argv);
    char orphan[PATH_MAX], gone[PATH_MAX], next[PATH_MAX], path[PATH_MAX + 32];
    engine_results *res;
    int64_t id, id2;
    FILE *fp;

    (void)state;
    s.auto_cleanup = 0;
    id = submit(f, &s);
    assert_int_equal(wait_done(f, 1000, id).status, RX_JOB_FINISHED);
    engine_close(f->e);
    f->e = NULL;
    /* What a crash leaves: a job's directory renamed but not removed, one without a row, and
     * (never made by rxjobd, the worst case) one for the id the next job gets. */
    (void)snprintf(gone, sizeof(gone), "%s/spool/%" PRId64 ".gone", f->dir, id + 100);
    (void)snprintf(orphan, sizeof(orphan), "%s/spool/%" PRId64, f->dir, id + 101);
    (void)snprintf(next, sizeof(next), "%s/spool/%" PRId64, f->dir, id + 1);
    for (int k = 0; k < 3; k++) {
        const char *d = k == 0 ? gone : k == 1 ? orphan : next;

        assert_int_equal(mkdir(d, 0700), 0);
        (void)snprintf(path, sizeof(path), "%s/stale", d);
        fp = fopen(path, "w");
        assert_non_null(fp);
        fclose(fp);
    }
    fixture_open(f);
    id2 = submit(f, &s);
    assert_int_equal(id2, id + 1);
    assert_int_equal(wait_done(f, 1000, id2).status, RX_JOB_FINISHED);
    for (int i = 0; i < 3000 && (path_exists(gone) || path_exists(orphan)); i++)
        sleep_ms(10);
    assert_false(path_exists(gone));
    assert_false(path_exists(orphan));
    /* The new job's directory is its own: made fresh, its result kept, no stale file. */
    res = results(f, 1000, id2, -1);
    assert_string_equal(res->slots[0].value, "mine");
    engine_results_free(res);
    (void)snprintf(path, sizeof(path), "%s/stale", next);
    assert_false(path_exists(path));
    (void)snprintf(path, sizeof(path), "%s/t0.result", next);
    assert_true(path_exists(path));
    /* The first job is untouched. */
    res = results(f, 1000, id, -1);
    assert_string_equal(res->slots[0].value, "mine");
    engine_results_free(res);
    fixture_free(f);
}

/* An orphan directory found at start whose <id>.gone name is taken (a removal a crash cut
 * short) is removed before the engine opens, not queued for removal in place: its id can be
 * the next job's (a job that starts at once makes its directory before its commit, and a crash
 * there leaves the id uncommitted), whose files a late removal would take. */
static void
test_engine_orphan_id_taken_again(void **state)
{
    fixture *f = fixture_new(2, 0);
    char *argv[] = {"sh", "-c", "printf mine > $RXJOB_RESULT", NULL};
    engine_spec s = cmd_spec(argv);
    char gone[PATH_MAX + 32], next[PATH_MAX + 32], path[PATH_MAX + 64];
    engine_results *res;
    int64_t id;
    FILE *fp;

    (void)state;
    s.auto_cleanup = 0;
    engine_close(f->e);
    f->e = NULL;
    /* A removal cut short, slow to finish (queued first: made first), and the orphan of the
     * uncommitted id 1, which the next job gets. */
    (void)snprintf(gone, sizeof(gone), "%s/spool/1.gone", f->dir);
    (void)snprintf(next, sizeof(next), "%s/spool/1", f->dir);
    assert_int_equal(mkdir(gone, 0700), 0);
    for (int i = 0; i < 3000; i++) {
        (void)snprintf(path, sizeof(path), "%s/t%d.out", gone, i);
        fp = fopen(path, "w");
        assert_non_null(fp);
        fclose(fp);
    }
    assert_int_equal(mkdir(next, 0700), 0);
    (void)snprintf(path, sizeof(path), "%s/stale", next);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    fixture_open(f);
    id = submit(f, &s);
    assert_int_equal(id, 1);
    assert_int_equal(wait_done(f, 1000, id).status, RX_JOB_FINISHED);
    for (int i = 0; i < 3000 && path_exists(gone); i++)
        sleep_ms(10);
    assert_false(path_exists(gone));
    sleep_ms(100);
    (void)snprintf(path, sizeof(path), "%s/stale", next);
    assert_false(path_exists(path));
    (void)snprintf(path, sizeof(path), "%s/t0.result", next);
    assert_true(path_exists(path));
    res = results(f, 1000, id, -1);
    assert_string_equal(res->slots[0].value, "mine");
    engine_results_free(res);
    fixture_free(f);
}

/* Live children of this process that are blank spare supervisors ("rxjob-shim --blank"). */
static int
count_spares(void)
{
    return count_procs(0, "--blank");
}

/* Wait (10 s at most) until the scheduler has n spare supervisors ready. */
static void
wait_spares(int n)
{
    for (int i = 0; i < 1000 && count_spares() < n; i++)
        sleep_ms(10);
    assert_true(count_spares() >= n);
}

/* The live blank spares among this process's children: how many, into pids (at most max). */
static int
spare_pids(pid_t *pids, int max)
{
    pid_t kids[MAX_CHILDREN];
    int k = children_now(kids), n = 0;

    for (int i = 0; i < k && n < max; i++) {
        char name[32], st;
        int ppid, pgrp;

        (void)snprintf(name, sizeof(name), "%d", (int)kids[i]);
        if (proc_stat(name, &st, &ppid, &pgrp) == 0 && st != 'Z' && proc_arg1_is(name, "--blank"))
            pids[n++] = kids[i];
    }
    return n;
}

/* A blank spare that dies waiting (killed by its user, say) is reaped at once, not left a
 * zombie until a task takes it (the bottom one of the stack never is); new ones are spawned
 * after SPARE_RESPAWN_MS, and a job still runs meanwhile. */
static void
test_engine_dead_spare_reaped(void **state)
{
    fixture *f = fixture_new(2, 0);
    pid_t pids[8];
    int n, left = 1;
    char *argv[] = {"true", NULL};
    engine_spec s = cmd_spec(argv);

    (void)state;
    wait_spares(2);
    n = spare_pids(pids, 8);
    assert_true(n >= 2); /* (a third may be on its way out: spawned while one was taken) */
    for (int i = 0; i < n; i++)
        assert_int_equal(kill(pids[i], SIGKILL), 0);
    /* Gone from /proc: dead and reaped (a zombie is dead, not reaped). */
    for (int tries = 0; tries < 300 && left > 0; tries++) {
        left = 0;
        for (int i = 0; i < n; i++) {
            char name[32], st;
            int ppid, pgrp;

            (void)snprintf(name, sizeof(name), "%d", (int)pids[i]);
            left += proc_stat(name, &st, &ppid, &pgrp) == 0;
        }
        if (left > 0)
            sleep_ms(10);
    }
    assert_int_equal(left, 0);
    assert_int_equal(wait_done(f, 1000, submit(f, &s)).status, RX_JOB_FINISHED);
    wait_spares(2);
    fixture_free(f);
}

/* Run SQL on the fixture's store through a connection of the test's own. */
static void
db_exec(const fixture *f, const char *sql)
{
    char path[PATH_MAX];
    sqlite3 *db = NULL;
    char *msg = NULL;

    scratch(f, "jobs.db", path, sizeof(path));
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
    sqlite3_close(db);
}

/* One integer the store answers (through a connection of the test's own). */
static long long
db_int(const fixture *f, const char *sql)
{
    char path[PATH_MAX];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v;

    scratch(f, "jobs.db", path, sizeof(path));
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Lines in a file (0 when there is none). */
static int
count_lines(const char *path)
{
    FILE *fp = fopen(path, "r");
    int n = 0, c;

    if (fp == NULL)
        return 0;
    while ((c = fgetc(fp)) != EOF)
        n += c == '\n';
    fclose(fp);
    return n;
}

/* A job submitted to an idle daemon (a spare supervisor ready, a slot free) starts in its
 * submission's own transaction (commit_batch, sched_start_new): when engine_submit returns, the
 * job is RUNNING, in the store as in memory, with its task's running row committed. */
static void
test_engine_submit_starts_at_once(void **state)
{
    fixture *f = fixture_new(2, 0);
    char *argv[] = {"sleep", "0.5", NULL};
    engine_spec s = cmd_spec(argv);
    char why[256] = "", sql[200];
    engine_job job;

    (void)state;
    wait_spares(2);
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_OK);
    assert_int_equal(job.status, RX_JOB_RUNNING);
    assert_int_equal(job.running, 1);
    (void)snprintf(sql, sizeof(sql), "SELECT status FROM jobs WHERE id = %" PRId64, job.id);
    assert_int_equal(db_int(f, sql), RX_JOB_RUNNING);
    (void)snprintf(sql, sizeof(sql),
                   "SELECT count(*) FROM tasks WHERE job_id = %" PRId64 " AND state = 0", job.id);
    assert_int_equal(db_int(f, sql), 1);
    assert_int_equal(wait_done(f, 1000, job.id).status, RX_JOB_FINISHED);
    fixture_free(f);
}

/* A start in the submission's transaction that fails leaves nothing behind: a task row that
 * cannot be written (here a trigger) rolls the start back, the submission is still recorded,
 * and the scheduler runs its task later, once; a commit that fails (a job update refused)
 * fails the submission, with no task run and no directory left. */
static void
test_engine_start_at_once_failures(void **state)
{
    fixture *f = fixture_new(2, 0);
    char marker[PATH_MAX], cmd[PATH_MAX + 64], dir[PATH_MAX + 32], why[256] = "";
    char *argv[] = {"sh", "-c", cmd, NULL};
    engine_spec s = cmd_spec(argv);
    engine_job job;
    int64_t id;

    (void)state;
    scratch(f, "ran", marker, sizeof(marker));
    (void)snprintf(cmd, sizeof(cmd), "echo x >> '%s'", marker);

    wait_spares(2);
    db_exec(f, "CREATE TRIGGER no_task BEFORE INSERT ON tasks "
               "BEGIN SELECT RAISE(ABORT, 'injected'); END");
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_OK);
    assert_int_equal(job.status, RX_JOB_QUEUED);
    id = job.id;
    sleep_ms(300);
    assert_int_equal(count_lines(marker), 0);
    db_exec(f, "DROP TRIGGER no_task");
    assert_int_equal(wait_done(f, 1000, id).status, RX_JOB_FINISHED);
    assert_int_equal(count_lines(marker), 1);

    wait_spares(2);
    db_exec(f, "CREATE TRIGGER no_update BEFORE UPDATE ON jobs "
               "BEGIN SELECT RAISE(ABORT, 'injected'); END");
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_ESTORE);
    (void)snprintf(dir, sizeof(dir), "%s/spool/%" PRId64, f->dir, id + 1);
    assert_false(path_exists(dir));
    sleep_ms(300);
    assert_int_equal(count_lines(marker), 1);
    db_exec(f, "DROP TRIGGER no_update");
    id = submit(f, &s);
    assert_int_equal(wait_done(f, 1000, id).status, RX_JOB_FINISHED);
    assert_int_equal(count_lines(marker), 2);
    fixture_free(f);
}

/* A collection with cleanup ends at once (the connection does not wait for the delete's
 * commit): the job is gone to every caller from then on, its rows are deleted by the engine's
 * next transaction (the scheduler's, woken for it), and a close right after it still deletes
 * them: the job does not come back at the next start. */
static void
test_engine_collected_job_deleted(void **state)
{
    fixture *f = fixture_new(2, 0);
    char *argv[] = {"sh", "-c", "printf ok > $RXJOB_RESULT", NULL};
    engine_spec s = cmd_spec(argv);
    engine_results *res;
    engine_job job;
    char sql[128];
    int64_t id;

    (void)state;
    for (int round = 0; round < 2; round++) {
        id = submit(f, &s);
        assert_int_equal(wait_done(f, 1000, id).status, RX_JOB_FINISHED);
        res = results(f, 1000, id, 1);
        assert_string_equal(res->slots[0].value, "ok");
        assert_int_equal(engine_results_end(res, 1), RX_OK);
        assert_int_equal(engine_get(f->e, 1000, id, &job), RX_ENOENT);
        (void)snprintf(sql, sizeof(sql), "SELECT count(*) FROM jobs WHERE id = %" PRId64, id);
        if (round == 0) {
            for (int i = 0; i < 500 && db_int(f, sql) != 0; i++)
                sleep_ms(10);
            assert_int_equal(db_int(f, sql), 0);
            assert_spool_gone(f, id, 5000);
        } else {
            fixture_reopen(f);
            assert_int_equal(engine_get(f->e, 1000, id, &job), RX_ENOENT);
            assert_int_equal(db_int(f, sql), 0);
        }
    }
    fixture_free(f);
}

/* A submission to an idle daemon whose transaction cannot even begin (the store locked by
 * another process) fails alone: the tasks already running are not touched, and end as
 * usual. */
static void
test_engine_start_at_once_begin_fails(void **state)
{
    fixture *f = fixture_new(2, 0);
    char *argv_sleep[] = {"sleep", "1", NULL};
    char *argv_true[] = {"true", NULL};
    engine_spec slow = cmd_spec(argv_sleep), quick = cmd_spec(argv_true);
    char path[PATH_MAX], why[256] = "";
    sqlite3 *db = NULL;
    engine_job job;
    int64_t id;

    (void)state;
    wait_spares(2);
    id = submit(f, &slow);
    (void)wait_running(f, 1000, id);
    wait_spares(2);
    scratch(f, "jobs.db", path, sizeof(path));
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(engine_submit(f->e, &quick, &job, why, sizeof(why)), RX_ESTORE);
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(engine_wait(f->e, 1000, id, 10000, &job), RX_OK);
    assert_int_equal(job.status, RX_JOB_FINISHED);
    fixture_free(f);
}

/* A commit that fails after a job's directory was made for a start at once removes that
 * directory before the submission returns, even when its <id>.gone name is taken (the removal
 * of an earlier failed attempt at the same id, queued behind a slow one): the id is given
 * again to the next job, whose directory a removal in place, later, would take. */
static void
test_engine_start_at_once_gone_taken(void **state)
{
    fixture *f = fixture_new(2, 0);
    char *argv[] = {"sh", "-c", "sleep 0.3; printf ok > $RXJOB_RESULT", NULL};
    engine_spec s = cmd_spec(argv);
    char dir[PATH_MAX + 32], gone[PATH_MAX + 64], why[256] = "";
    engine_results *res;
    engine_job job;
    int64_t id;
    FILE *fp;

    (void)state;
    id = submit(f, &s);
    assert_int_equal(wait_done(f, 1000, id).status, RX_JOB_FINISHED);
    (void)snprintf(dir, sizeof(dir), "%s/spool/%" PRId64, f->dir, id + 1);
    (void)snprintf(gone, sizeof(gone), "%s.gone", dir);
    assert_int_equal(mkdir(gone, 0700), 0);
    (void)snprintf(gone, sizeof(gone), "%s.gone/left", dir);
    fp = fopen(gone, "w");
    assert_non_null(fp);
    fclose(fp);

    wait_spares(2);
    db_exec(f, "CREATE TRIGGER no_update BEFORE UPDATE ON jobs "
               "BEGIN SELECT RAISE(ABORT, 'injected'); END");
    assert_int_equal(engine_submit(f->e, &s, &job, why, sizeof(why)), RX_ESTORE);
    assert_false(path_exists(dir));
    db_exec(f, "DROP TRIGGER no_update");
    wait_spares(2);
    assert_int_equal(submit(f, &s), id + 1);
    assert_int_equal(wait_done(f, 1000, id + 1).status, RX_JOB_FINISHED);
    res = results(f, 1000, id + 1, 1);
    assert_string_equal(res->slots[0].value, "ok");
    assert_int_equal(engine_results_end(res, 1), RX_OK);
    fixture_free(f);
}

/* engine_close drains the remover's queue: directories handed to it are gone after the close. */
static void
test_engine_close_drains_removals(void **state)
{
    fixture *f = fixture_new(2, 0);
    char *argv[] = {"sh", "-c", "printf x > $RXJOB_RESULT", NULL};
    engine_spec s = cmd_spec(argv);
    char path[PATH_MAX + 32], warn[256];
    int64_t ids[20];
    int cleaned;

    (void)state;
    s.auto_cleanup = 0;
    s.times_to_run = 3;
    for (int i = 0; i < 20; i++)
        ids[i] = submit(f, &s);
    for (int i = 0; i < 20; i++)
        assert_int_equal(wait_done(f, 1000, ids[i]).status, RX_JOB_FINISHED);
    for (int i = 0; i < 20; i++) {
        cleaned = 0;
        assert_int_equal(engine_cleanup(f->e, 1000, ids[i], 1, &cleaned, warn, sizeof(warn)),
                         RX_OK);
        assert_int_equal(cleaned, 1);
    }
    engine_close(f->e);
    f->e = NULL;
    for (int i = 0; i < 20; i++) {
        (void)snprintf(path, sizeof(path), "%s/spool/%" PRId64, f->dir, ids[i]);
        assert_false(path_exists(path));
        (void)snprintf(path, sizeof(path), "%s/spool/%" PRId64 ".gone", f->dir, ids[i]);
        assert_false(path_exists(path));
    }
    fixture_free(f);
}

/* A quick loop of single submissions: the latency one caller sees (one fsync each). */
static void
test_engine_submit_latency(void **state)
{
    fixture *f = fixture_new(2, 1);
    char *argv[] = {"true", NULL};
    engine_spec s = cmd_spec(argv);
    double t0 = now_s(), dt;

    (void)state;
    for (int i = 0; i < 100; i++)
        (void)submit(f, &s);
    dt = now_s() - t0;
    print_message("submit latency, one caller: %.2f ms each (100 submissions)\n", dt * 10);
    fixture_free(f);
}

/* ---------------------------------------------------------------------------------------------
 * This binary as a function program (what rx_init does for a real one)
 * ------------------------------------------------------------------------------------------- */

static int
write_str_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "w");

    if (fp == NULL)
        return -1;
    if (len > 0 && fwrite(data, 1, len, fp) != len) {
        fclose(fp);
        return -1;
    }
    return fclose(fp);
}

static int
run_function(const char *name)
{
    const char *arg_path = getenv("RXJOB_ARG");
    const char *result = getenv("RXJOB_RESULT");
    const char *error = getenv("RXJOB_ERROR");
    char arg[256];
    size_t len = 0;
    FILE *fp;

    if (arg_path == NULL || result == NULL || error == NULL)
        return 2;
    fp = fopen(arg_path, "r");
    if (fp == NULL)
        return 2;
    len = fread(arg, 1, sizeof(arg) - 1, fp);
    fclose(fp);
    arg[len] = '\0';
    if (strcmp(name, "echo_arg") == 0)
        return write_str_file(result, arg, len) == 0 ? 0 : 1;
    if (strcmp(name, "fail") == 0) {
        char msg[300];
        int n = snprintf(msg, sizeof(msg), "bad input: %s", arg);

        (void)write_str_file(error, msg, (size_t)n);
        return 1;
    }
    (void)write_str_file(error, "", 0);
    return 127;
}

/* echo_arg for chunks: its argument is its result. */
RX_FUNCTION(echo_arg)
{
    size_t len = 0;
    const void *arg = rx_task_arg(task, &len);

    return rx_task_set_result(task, arg, len) == RX_OK ? 0 : -1;
}

/* echo_arg after 1 s: a chunk of these (4 s) runs long enough to restart the engine under it
 * twice, on a loaded machine too. */
RX_FUNCTION(nap_echo)
{
    size_t len = 0;
    const void *arg = rx_task_arg(task, &len);

    sleep_ms(1000);
    return rx_task_set_result(task, arg, len) == RX_OK ? 0 : -1;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_submit_wait_finished),
        cmocka_unit_test(test_engine_results_while_running),
        cmocka_unit_test(test_engine_cancel_running),
        cmocka_unit_test(test_engine_cancel_queued),
        cmocka_unit_test(test_engine_cancel_finished_refused),
        cmocka_unit_test(test_engine_fail13_continue),
        cmocka_unit_test(test_engine_fail13_stop),
        cmocka_unit_test(test_engine_fail_stop_running),
        cmocka_unit_test(test_engine_num_tasks_cap),
        cmocka_unit_test(test_engine_daemon_slots),
        cmocka_unit_test(test_engine_time_limit),
        cmocka_unit_test(test_engine_recover_adopt),
        cmocka_unit_test(test_engine_recover_lost),
        cmocka_unit_test(test_engine_lost_kills_orphan),
        cmocka_unit_test(test_engine_kill_orphan_of_zombie_supervisor),
        cmocka_unit_test(test_engine_lost_kills_orphan_other_group),
        cmocka_unit_test(test_engine_stale_go0_record),
        cmocka_unit_test(test_engine_queued_run_after_reopen),
        cmocka_unit_test(test_engine_recover_after_kill9),
        cmocka_unit_test(test_engine_wal_written_ahead),
        cmocka_unit_test(test_engine_recover_not_started),
        cmocka_unit_test(test_engine_cancel_survives_restart),
        cmocka_unit_test(test_engine_uid_isolation),
        cmocka_unit_test(test_engine_group_commit),
        cmocka_unit_test(test_engine_wait_child_deadline),
        cmocka_unit_test(test_engine_many_tasks_no_leaks),
        cmocka_unit_test(test_engine_queued_per_user),
        cmocka_unit_test(test_engine_limits),
        cmocka_unit_test(test_engine_args_env_cwd_stdin),
        cmocka_unit_test(test_engine_command_not_found),
        cmocka_unit_test(test_engine_function_work),
        cmocka_unit_test(test_engine_schema_1_upgrade),
        cmocka_unit_test(test_engine_recover_chunk_rows),
        cmocka_unit_test(test_engine_run_exit_record),
        cmocka_unit_test(test_engine_output_cap),
        cmocka_unit_test(test_engine_output_cap_timeout_cancel),
        cmocka_unit_test(test_engine_result_limit),
        cmocka_unit_test(test_engine_cleanup),
        cmocka_unit_test(test_engine_results_race),
        cmocka_unit_test(test_engine_wait_timeout),
        cmocka_unit_test(test_engine_slot_times),
        cmocka_unit_test(test_engine_store_error_cause),
        cmocka_unit_test(test_engine_results_keep_spool),
        cmocka_unit_test(test_engine_removal_does_not_stall),
        cmocka_unit_test(test_engine_orphan_spools_removed),
        cmocka_unit_test(test_engine_orphan_id_taken_again),
        cmocka_unit_test(test_engine_submit_starts_at_once),
        cmocka_unit_test(test_engine_dead_spare_reaped),
        cmocka_unit_test(test_engine_collected_job_deleted),
        cmocka_unit_test(test_engine_start_at_once_failures),
        cmocka_unit_test(test_engine_start_at_once_begin_fails),
        cmocka_unit_test(test_engine_start_at_once_gone_taken),
        cmocka_unit_test(test_engine_close_drains_removals),
        cmocka_unit_test(test_engine_submit_latency),
    };
    const char *fn = getenv("RXJOB_FUNCTION");
    ssize_t n;

    /* A chunk (docs/engine.md "Chunks") is run by the library's own rx_init, which speaks the
     * supervisor's protocol; it exits. */
    if (fn != NULL && getenv("RXJOB_CHUNK_FD") != NULL) {
        int argc = 0;
        char **argv = NULL;

        rx_init(&argc, &argv);
    }
    if (fn != NULL)
        return run_function(fn);
    n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    if (n <= 0)
        return 1;
    self_exe[n] = '\0';
    return cmocka_run_group_tests(tests, NULL, NULL);
}
