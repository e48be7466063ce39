/*
 * test_server.c - the server compute context and the job functions, against a real rxjobd.
 *
 * The suite starts rxjobd (the build tree's, or $RXJOB_TEST_DAEMON) in the foreground on a
 * socket in a temporary directory, as a child, and drives it through the public API only:
 * rx_server_context("unix:..."), rx_exec, and the job functions. C functions run on the server
 * the way users run them: this binary registers them with RX_FUNCTION and main calls rx_init
 * first, so when the daemon runs this same program for a task, rx_init runs the function and
 * exits. One test covers the embedded default (rx_server_context(NULL)): the library starts the
 * daemon itself, and two processes starting it at once end with one daemon.
 *
 * Without an rxjobd binary every test is skipped.
 */
#define _GNU_SOURCE
#include "core/internal.h" /* rx__alloc_fail_after, the allocation seam */
#include "rxjob.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
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

static char daemon_path[PATH_MAX]; /* "" when there is no rxjobd to test against */
static char tmpdir[PATH_MAX];      /* everything the suite makes lives here */
static char main_url[PATH_MAX + 8];
static pid_t main_daemon = -1;

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

static void
tmp_path(char *buf, size_t len, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", tmpdir, name);

    assert_true(n > 0 && (size_t)n < len);
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

/* Start rxjobd in the foreground on TMP/<name>.sock with state TMP/<name>-state; returns its pid
 * once the socket answers. Its output goes to TMP/<name>.log. */
static pid_t
start_daemon(const char *name, const char *slots)
{
    char sock[PATH_MAX], state[PATH_MAX], log[PATH_MAX], tmp[PATH_MAX];
    char *argv[10];
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int n = 0;

    (void)snprintf(tmp, sizeof(tmp), "%s.sock", name);
    tmp_path(sock, sizeof(sock), tmp);
    (void)snprintf(tmp, sizeof(tmp), "%s-state", name);
    tmp_path(state, sizeof(state), tmp);
    (void)snprintf(tmp, sizeof(tmp), "%s.log", name);
    tmp_path(log, sizeof(log), tmp);
    argv[n++] = daemon_path;
    argv[n++] = "--foreground";
    argv[n++] = "--socket";
    argv[n++] = sock;
    argv[n++] = "--state-dir";
    argv[n++] = state;
    if (slots != NULL) {
        argv[n++] = "--slots";
        argv[n++] = (char *)slots;
    }
    argv[n] = NULL;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0), 0);
    assert_int_equal(
        posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, 1, 2), 0);
    assert_int_equal(posix_spawn(&pid, daemon_path, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    for (int64_t deadline = now_ms() + 20000; !socket_answers(sock);) {
        int st;

        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "rxjobd exited at start; see %s\n", log);
            return -1;
        }
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        sleep_ms(10);
    }
    return pid;
}

static void
stop_daemon(pid_t pid)
{
    int st;

    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
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
    if (daemon_path[0] == '\0' || main_daemon <= 0)
        skip();
}

static rx_context *
server(void)
{
    rx_context *ctx = NULL;

    assert_int_equal(rx_server_context(main_url, &ctx), RX_OK);
    return ctx;
}

/* Poll until the job's status is one of the two given, for up to 20 s. */
static rx_job_status
await_status(rx_job *job, rx_job_status a, rx_job_status b)
{
    rx_job_status s = rx_get_job_status(job);

    for (int64_t deadline = now_ms() + 20000; s != a && s != b && now_ms() < deadline;) {
        sleep_ms(10);
        s = rx_get_job_status(job);
    }
    return s;
}

/* The job's console output, as a NUL-terminated string the caller frees. */
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

static rx_job *
submit(rx_context *ctx, const rx_work *work, const rx_exec_opts *opts)
{
    rx_job *job = NULL;
    rx_err err = rx_exec(ctx, work, opts, NULL, &job);

    if (err != RX_OK)
        fail_msg("rx_exec: %s: %s", rx_errname(err), rx_context_errmsg(ctx));
    assert_non_null(job);
    assert_true(rx_job_id(job) > 0);
    return job;
}

static rx_job *
submit_command(rx_context *ctx, const char *const *argv)
{
    rx_work work = rx_work_command(argv);
    rx_exec_opts opts = RX_EXEC_OPTS_INIT;

    return submit(ctx, &work, &opts);
}

/* Warnings the library logs, joined by newlines. */
static char log_text[16384];

static void
capture_log(rx_log_level level, const char *msg, void *user)
{
    size_t used = strlen(log_text);

    (void)user;
    if (level <= RX_LOG_WARN)
        (void)snprintf(log_text + used, sizeof(log_text) - used, "%s\n", msg);
}

static int
file_exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

/* 1 if pid is a live process (not a zombie), after up to 1 s for a signal to land. */
static int
process_alive(pid_t pid)
{
    for (int tries = 0; tries < 100; tries++) {
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

/* ---------------------------------------------------------------------------------------------
 * Functions the tasks run (in this program, started again by the daemon)
 * ------------------------------------------------------------------------------------------- */

RX_FUNCTION(greet)
{
    char buf[64];

    printf("hello from task %zu\n", rx_task_index(task));
    fflush(stdout);
    fprintf(stderr, "a word on stderr from task %zu\n", rx_task_index(task));
    sleep_ms(300);
    (void)snprintf(buf, sizeof(buf), "hi %zu", rx_task_index(task));
    return rx_task_set_result_str(task, buf) == RX_OK ? 0 : -1;
}

RX_FUNCTION(fail13)
{
    size_t len = 0;
    const char *arg = rx_task_arg(task, &len);
    char buf[64];

    /* With an argument, it is a path to create: proof that the task started. */
    if (len > 0) {
        FILE *f = fopen(arg, "w");

        if (f != NULL)
            fclose(f);
    }
    if (rx_task_index(task) == 13)
        return rx_task_fail(task, "task %zu refuses: unlucky number", rx_task_index(task));
    (void)snprintf(buf, sizeof(buf), "value %zu", rx_task_index(task));
    return rx_task_set_result_str(task, buf) == RX_OK ? 0 : -1;
}

RX_FUNCTION(echo_bytes)
{
    size_t len = 0;
    const void *arg = rx_task_arg(task, &len);

    return rx_task_set_result(task, arg, len) == RX_OK ? 0 : -1;
}

/* Fails without saying why: rx_init says what it returned. */
RX_FUNCTION(fail_quietly)
{
    (void)task;
    return 5;
}

/* Not registered: a server context must refuse it. */
static int
unregistered(rx_task *task)
{
    (void)task;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------------------------- */

/* The seed's example: non-waiting job, status right after submit, wait, results, output. */
/* Each slot says how long its task ran and how a command exited, as on local contexts. */
static void
test_server_slot_times_and_exit_status(void **state)
{
    const char *const argv[] = {"sleep", "0.3", NULL};
    rx_context *ctx;
    rx_job *job;
    rx_results *res = NULL;

    (void)state;
    skip_without_daemon();
    ctx = server();
    job = submit_command(ctx, argv);
    assert_int_equal(rx_wait_for_job(job, 60), RX_OK);
    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_TRUE, &res), RX_OK);
    assert_int_equal(rx_results_exit_status(res, 0), 0);
    assert_true(rx_results_elapsed_s(res, 0) >= 0.25);
    assert_true(rx_results_elapsed_s(res, 0) < 5.0);
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
}

static void
test_server_lifecycle(void **state)
{
    rx_context *ctx;
    rx_job *job;
    rx_results *res = NULL;
    rx_work work = rx_work_function(greet);
    rx_exec_opts opts = RX_EXEC_OPTS_INIT;
    rx_job_status s;
    char *out1, *out2, *out3;
    size_t len = 0;

    (void)state;
    skip_without_daemon();
    ctx = server();
    assert_string_equal(rx_context_name(ctx), "server");
    job = submit(ctx, &work, &opts);
    s = rx_get_job_status(job);
    assert_true(s == RX_JOB_QUEUED || s == RX_JOB_RUNNING);
    assert_int_equal(rx_wait_for_job(job, -1), RX_OK);
    assert_int_equal(rx_get_job_status(job), RX_JOB_FINISHED);

    /* Output: readable twice before collection, with the header, stdout and stderr. */
    out1 = job_output(job);
    out2 = job_output(job);
    assert_string_equal(out1, out2);
    assert_non_null(strstr(out1, "==> task 0 <=="));
    assert_non_null(strstr(out1, "hello from task 0"));
    assert_non_null(strstr(out1, "a word on stderr from task 0"));

    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_INHERIT, &res), RX_OK);
    assert_int_equal(rx_results_count(res), 1);
    assert_int_equal(rx_results_status(res), RX_JOB_FINISHED);
    assert_int_equal(rx_results_state(res, 0), RX_TASK_OK);
    assert_string_equal(rx_results_value(res, 0, &len), "hi 0");
    assert_int_equal(len, 4);
    assert_null(rx_results_error(res, 0));
    rx_results_free(res);
    res = NULL;

    /* Collected with auto-cleanup (the default): gone. */
    assert_int_equal(rx_get_job_status(job), RX_JOB_UNDETERMINED);
    out3 = job_output(job);
    assert_string_equal(out3, "");
    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_INHERIT, &res), RX_ENORESULTS);
    assert_null(res);
    assert_int_equal(rx_wait_for_job(job, 5), RX_OK); /* over: returns at once */
    free(out1);
    free(out2);
    free(out3);
    rx_job_free(job);
    rx_context_free(ctx);
}

/* auto_cleanup false: results twice, stays FINISHED and listed; cleanup warns, force removes. */
static void
test_server_keep_and_cleanup(void **state)
{
    const char *const argv[] = {"sh", "-c", "printf kept > \"$RXJOB_RESULT\"", NULL};
    rx_context *ctx;
    rx_job *job;
    rx_job **jobs = NULL;
    rx_results *res = NULL;
    rx_job_filter filter = {0};
    size_t n = 0, cleaned = 99;
    int found = 0;

    (void)state;
    skip_without_daemon();
    ctx = server();
    assert_int_equal(rx_context_set_auto_cleanup(ctx, 0), RX_OK);
    job = submit_command(ctx, argv);
    assert_int_equal(rx_wait_for_job(job, 30), RX_OK);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_INHERIT, &res), RX_OK);
        assert_string_equal(rx_results_value(res, 0, NULL), "kept");
        rx_results_free(res);
        res = NULL;
        assert_int_equal(rx_get_job_status(job), RX_JOB_FINISHED);
    }
    /* A per-call RX_FALSE keeps it too. */
    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_FALSE, &res), RX_OK);
    rx_results_free(res);
    res = NULL;

    filter.states = 1u << RX_JOB_FINISHED;
    assert_int_equal(rx_get_jobs(ctx, &filter, &jobs, &n), RX_OK);
    for (size_t i = 0; i < n; i++)
        found += rx_job_id(jobs[i]) == rx_job_id(job);
    assert_int_equal(found, 1);
    rx_jobs_free(jobs, n);
    jobs = NULL;

    /* Without force: kept, with a warning that names force and rx_get_job_results. */
    log_text[0] = '\0';
    rx_set_log(capture_log, NULL);
    assert_int_equal(rx_cleanup_jobs(&job, 1, 0, &cleaned), RX_OK);
    rx_set_log(NULL, NULL);
    assert_int_equal(cleaned, 0);
    assert_non_null(strstr(log_text, "force"));
    assert_non_null(strstr(log_text, "rx_get_job_results"));
    assert_int_equal(rx_get_job_status(job), RX_JOB_FINISHED);

    /* With force: gone, and no longer listed. */
    assert_int_equal(rx_cleanup_jobs(&job, 1, 1, &cleaned), RX_OK);
    assert_int_equal(cleaned, 1);
    assert_int_equal(rx_get_job_status(job), RX_JOB_UNDETERMINED);
    assert_int_equal(rx_get_jobs(ctx, NULL, &jobs, &n), RX_OK);
    for (size_t i = 0; i < n; i++)
        assert_true(rx_job_id(jobs[i]) != rx_job_id(job));
    rx_jobs_free(jobs, n);

    /* An UNDETERMINED job: a silent no-op. */
    log_text[0] = '\0';
    rx_set_log(capture_log, NULL);
    assert_int_equal(rx_cleanup_jobs(&job, 1, 0, &cleaned), RX_OK);
    rx_set_log(NULL, NULL);
    assert_int_equal(cleaned, 0);
    assert_string_equal(log_text, "");
    rx_job_free(job);
    rx_context_free(ctx);
}

/* Results of a running job: RX_ENOTFINISHED at once, nothing deleted; cleanup without force
 * skips it with a warning; wait with a timeout times out. */
static void
test_server_running_job(void **state)
{
    const char *const argv[] = {"sleep", "30", NULL};
    rx_context *ctx;
    rx_job *job;
    rx_results *res = NULL;
    size_t cleaned = 99;
    int canceled = -1;
    int64_t t0;

    (void)state;
    skip_without_daemon();
    ctx = server();
    job = submit_command(ctx, argv);
    assert_int_equal(await_status(job, RX_JOB_RUNNING, RX_JOB_RUNNING), RX_JOB_RUNNING);
    t0 = now_ms();
    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_TRUE, &res), RX_ENOTFINISHED);
    assert_int_equal(rx_get_job_results(job, RX_INHERIT, RX_INHERIT, &res), RX_ENOTFINISHED);
    assert_true(now_ms() - t0 < 2000);
    assert_null(res);
    assert_int_equal(rx_get_job_status(job), RX_JOB_RUNNING);

    t0 = now_ms();
    assert_int_equal(rx_wait_for_job(job, 0.3), RX_ETIMEDOUT);
    assert_true(now_ms() - t0 >= 250);
    assert_true(now_ms() - t0 < 3000);

    log_text[0] = '\0';
    rx_set_log(capture_log, NULL);
    assert_int_equal(rx_cleanup_jobs(&job, 1, 0, &cleaned), RX_OK);
    rx_set_log(NULL, NULL);
    assert_int_equal(cleaned, 0);
    assert_true(log_text[0] != '\0');
    assert_int_equal(rx_get_job_status(job), RX_JOB_RUNNING);

    assert_int_equal(rx_cancel_job(job, &canceled), RX_OK);
    assert_int_equal(canceled, 1);
    assert_int_equal(rx_wait_for_job(job, 30), RX_OK);
    assert_int_equal(rx_get_job_status(job), RX_JOB_CANCELED);
    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_INHERIT, &res), RX_ECANCELED);
    assert_int_equal(rx_get_job_results(job, RX_TRUE, RX_INHERIT, &res), RX_ECANCELED);
    assert_null(res);
    /* CANCELED jobs are removed without force. */
    assert_int_equal(rx_cleanup_jobs(&job, 1, 0, &cleaned), RX_OK);
    assert_int_equal(cleaned, 1);
    assert_int_equal(rx_get_job_status(job), RX_JOB_UNDETERMINED);
    rx_job_free(job);
    rx_context_free(ctx);
}

/* Cancel a running job: CANCELED within the grace period, its whole process group gone. */
static void
test_server_cancel_running(void **state)
{
    char pidfile[PATH_MAX], script[PATH_MAX * 2];
    const char *argv[] = {"sh", "-c", script, NULL};
    rx_context *ctx;
    rx_job *job;
    int canceled = -1;
    pid_t child = 0;
    int64_t t0;

    (void)state;
    skip_without_daemon();
    tmp_path(pidfile, sizeof(pidfile), "cancel-running.pid");
    (void)snprintf(script, sizeof(script), "sleep 60 & echo $! > '%s'; wait", pidfile);
    ctx = server();
    job = submit_command(ctx, argv);
    for (int64_t deadline = now_ms() + 20000; now_ms() < deadline; sleep_ms(10)) {
        FILE *f = fopen(pidfile, "r");
        long pid = 0;

        if (f != NULL && fscanf(f, "%ld", &pid) == 1 && pid > 0)
            child = (pid_t)pid;
        if (f != NULL)
            fclose(f);
        if (child > 0)
            break;
    }
    assert_true(child > 0);
    assert_true(process_alive(child));
    assert_int_equal(rx_get_job_status(job), RX_JOB_RUNNING);

    t0 = now_ms();
    assert_int_equal(rx_cancel_job(job, &canceled), RX_OK);
    assert_int_equal(canceled, 1);
    assert_int_equal(rx_wait_for_job(job, 30), RX_OK);
    assert_true(now_ms() - t0 < 10000);
    assert_int_equal(rx_get_job_status(job), RX_JOB_CANCELED);
    assert_false(process_alive(child)); /* the whole process group is gone */

    /* Canceling again changes nothing. */
    canceled = -1;
    assert_int_equal(rx_cancel_job(job, &canceled), RX_OK);
    assert_int_equal(canceled, 0);
    assert_int_equal(rx_cleanup_jobs(&job, 1, 1, NULL), RX_OK);
    rx_job_free(job);
    rx_context_free(ctx);
}

/* Cancel a queued job (behind a full slot): CANCELED, and it never starts. */
static void
test_server_cancel_queued(void **state)
{
    char sock[PATH_MAX], url[PATH_MAX + 8], marker[PATH_MAX];
    const char *const busy_argv[] = {"sleep", "60", NULL};
    const char *touch_argv[] = {"touch", marker, NULL};
    rx_context *ctx = NULL;
    rx_job *busy, *queued;
    int canceled = -1;
    pid_t one_slot;

    (void)state;
    skip_without_daemon();
    one_slot = start_daemon("one-slot", "1");
    assert_true(one_slot > 0);
    tmp_path(sock, sizeof(sock), "one-slot.sock");
    (void)snprintf(url, sizeof(url), "unix:%s", sock);
    tmp_path(marker, sizeof(marker), "queued-marker");
    assert_int_equal(rx_server_context(url, &ctx), RX_OK);

    busy = submit_command(ctx, busy_argv);
    assert_int_equal(await_status(busy, RX_JOB_RUNNING, RX_JOB_RUNNING), RX_JOB_RUNNING);
    queued = submit_command(ctx, touch_argv);
    sleep_ms(200);
    assert_int_equal(rx_get_job_status(queued), RX_JOB_QUEUED);
    assert_int_equal(rx_cancel_job(queued, &canceled), RX_OK);
    assert_int_equal(canceled, 1);
    assert_int_equal(rx_wait_for_job(queued, 30), RX_OK);
    assert_int_equal(rx_get_job_status(queued), RX_JOB_CANCELED);

    /* The slot frees up; the canceled job must still never run. */
    assert_int_equal(rx_cancel_job(busy, &canceled), RX_OK);
    assert_int_equal(canceled, 1);
    assert_int_equal(rx_wait_for_job(busy, 30), RX_OK);
    sleep_ms(300);
    assert_false(file_exists(marker));
    assert_int_equal(rx_get_job_status(queued), RX_JOB_CANCELED);

    rx_job *both[] = {busy, queued};
    size_t cleaned = 0;

    assert_int_equal(rx_cleanup_jobs(both, 2, 0, &cleaned), RX_OK);
    assert_int_equal(cleaned, 2);
    rx_job_free(busy);
    rx_job_free(queued);
    rx_context_free(ctx);
    stop_daemon(one_slot);
}

/* Many single-task jobs on one slot, each canceled at a random moment: each ends FINISHED or
 * CANCELED, none is left QUEUED or RUNNING. */
static void
test_server_cancel_at_random(void **state)
{
    enum { N_JOBS = 1000 }; /* the count issue #3 asks for */
    char sock[PATH_MAX], url[PATH_MAX + 8];
    const char *const argv[] = {"sleep", "0.01", NULL};
    rx_context *ctx = NULL;
    rx_job *jobs[N_JOBS];
    size_t finished = 0, canceled_n = 0, cleaned = 0;
    unsigned seed = 12345;
    pid_t one_slot;

    (void)state;
    skip_without_daemon();
    one_slot = start_daemon("random-cancel", "1");
    assert_true(one_slot > 0);
    tmp_path(sock, sizeof(sock), "random-cancel.sock");
    (void)snprintf(url, sizeof(url), "unix:%s", sock);
    assert_int_equal(rx_server_context(url, &ctx), RX_OK);
    for (size_t i = 0; i < N_JOBS; i++) {
        int canceled = -1;

        jobs[i] = submit_command(ctx, argv);
        seed = seed * 1103515245u + 12345u;
        if ((seed >> 16) % 4 != 0)
            sleep_ms((long)((seed >> 8) % 15));
        assert_int_equal(rx_cancel_job(jobs[i], &canceled), RX_OK);
        assert_true(canceled == 0 || canceled == 1);
    }
    for (size_t i = 0; i < N_JOBS; i++) {
        rx_job_status s;

        assert_int_equal(rx_wait_for_job(jobs[i], 60), RX_OK);
        s = rx_get_job_status(jobs[i]);
        if (s != RX_JOB_FINISHED && s != RX_JOB_CANCELED)
            fail_msg("job %zu is %s", i, rx_job_status_name(s));
        finished += s == RX_JOB_FINISHED;
        canceled_n += s == RX_JOB_CANCELED;
    }
    assert_int_equal(finished + canceled_n, N_JOBS);
    assert_int_equal(rx_cleanup_jobs(jobs, N_JOBS, 1, &cleaned), RX_OK);
    assert_int_equal(cleaned, N_JOBS);
    for (size_t i = 0; i < N_JOBS; i++)
        rx_job_free(jobs[i]);
    rx_context_free(ctx);
    stop_daemon(one_slot);
}

struct waiter {
    rx_job *job;
    rx_err err;
};

static void *
wait_thread(void *arg)
{
    struct waiter *w = arg;

    w->err = rx_wait_for_job(w->job, 60);
    return NULL;
}

/* Job functions on distinct jobs of one context may run at once: a status query is not held up
 * by a long poll on another thread. */
static void
test_server_concurrent_calls(void **state)
{
    const char *const slow_argv[] = {"sleep", "2", NULL};
    const char *const fast_argv[] = {"true", NULL};
    rx_context *ctx;
    struct waiter w;
    rx_job *fast;
    pthread_t th;
    int64_t t0;

    (void)state;
    skip_without_daemon();
    ctx = server();
    w.job = submit_command(ctx, slow_argv);
    w.err = RX_EINVAL;
    fast = submit_command(ctx, fast_argv);
    assert_int_equal(pthread_create(&th, NULL, wait_thread, &w), 0);
    sleep_ms(100);
    t0 = now_ms();
    for (int i = 0; i < 20; i++) {
        rx_job_status s = rx_get_job_status(fast);

        assert_true(s != RX_JOB_UNDETERMINED);
    }
    assert_true(now_ms() - t0 < 1500);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.err, RX_OK);
    assert_int_equal(rx_get_job_status(w.job), RX_JOB_FINISHED);
    assert_int_equal(rx_wait_for_job(fast, 30), RX_OK);
    rx_job *both[] = {w.job, fast};
    assert_int_equal(rx_cleanup_jobs(both, 2, 1, NULL), RX_OK);
    rx_job_free(w.job);
    rx_job_free(fast);
    rx_context_free(ctx);
}

/* Cancel a finished job: refused, results intact. */
static void
test_server_cancel_finished(void **state)
{
    const char *const argv[] = {"sh", "-c", "printf done > \"$RXJOB_RESULT\"", NULL};
    rx_context *ctx;
    rx_job *job;
    rx_results *res = NULL;
    int canceled = -1;

    (void)state;
    skip_without_daemon();
    ctx = server();
    job = submit_command(ctx, argv);
    assert_int_equal(rx_wait_for_job(job, 30), RX_OK);
    assert_int_equal(rx_cancel_job(job, &canceled), RX_OK);
    assert_int_equal(canceled, 0);
    assert_int_equal(rx_get_job_status(job), RX_JOB_FINISHED);
    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_TRUE, &res), RX_OK);
    assert_string_equal(rx_results_value(res, 0, NULL), "done");
    rx_results_free(res);
    /* out_canceled may be NULL. */
    assert_int_equal(rx_cancel_job(job, NULL), RX_OK);
    rx_job_free(job);
    rx_context_free(ctx);
}

/* A never-used id and a cleaned-up id read UNDETERMINED (never QUEUED); every job function
 * answers them without error. */
static void
test_server_undetermined(void **state)
{
    const char *const argv[] = {"true", NULL};
    rx_context *ctx;
    rx_job *never = NULL, *cleaned_job;
    rx_results *res = NULL;
    rx_job_progress progress;
    rx_job_status status = RX_JOB_QUEUED;
    int canceled = -1;
    size_t cleaned = 99;
    char *out;
    int64_t t0;

    (void)state;
    skip_without_daemon();
    ctx = server();
    assert_int_equal(rx_job_open(ctx, INT64_C(987654321), &never), RX_OK);
    assert_int_equal(rx_job_id(never), INT64_C(987654321));
    assert_int_equal(rx_get_job_status(never), RX_JOB_UNDETERMINED);
    t0 = now_ms();
    assert_int_equal(rx_wait_for_job(never, -1), RX_OK);
    assert_true(now_ms() - t0 < 2000);
    assert_int_equal(rx_cancel_job(never, &canceled), RX_OK);
    assert_int_equal(canceled, 0);
    assert_int_equal(rx_get_job_results(never, RX_INHERIT, RX_INHERIT, &res), RX_ENORESULTS);
    assert_int_equal(rx_get_job_results(never, RX_FALSE, RX_FALSE, &res), RX_ENORESULTS);
    assert_null(res);
    out = job_output(never);
    assert_string_equal(out, "");
    free(out);
    assert_int_equal(rx_job_get_progress(never, &status, &progress), RX_ENOENT);
    assert_int_equal(status, RX_JOB_QUEUED); /* untouched on failure */
    assert_int_equal(rx_cleanup_jobs(&never, 1, 1, &cleaned), RX_OK);
    assert_int_equal(cleaned, 0);

    cleaned_job = submit_command(ctx, argv);
    assert_int_equal(rx_wait_for_job(cleaned_job, 30), RX_OK);
    assert_int_equal(rx_cleanup_jobs(&cleaned_job, 1, 1, &cleaned), RX_OK);
    assert_int_equal(cleaned, 1);
    assert_int_equal(rx_get_job_status(cleaned_job), RX_JOB_UNDETERMINED);
    assert_int_equal(rx_get_job_results(cleaned_job, RX_FALSE, RX_INHERIT, &res), RX_ENORESULTS);
    rx_job_free(never);
    rx_job_free(cleaned_job);
    rx_context_free(ctx);
}

/* 20 tasks, index 13 failing, continue_on_failure true: all 20 run, FAILED, 19 values and the
 * error, and a warning on collection. */
static void
test_server_fail13_continue(void **state)
{
    rx_context *ctx;
    rx_job *job;
    rx_results *res = NULL;
    rx_work work = rx_work_function(fail13);
    rx_exec_opts opts = RX_EXEC_OPTS_INIT;
    rx_job_progress progress;
    rx_job_status status;
    char want[64], warn[128];

    (void)state;
    skip_without_daemon();
    ctx = server();
    opts.times_to_run = 20;
    job = submit(ctx, &work, &opts);
    assert_int_equal(rx_wait_for_job(job, 60), RX_OK);
    assert_int_equal(rx_get_job_status(job), RX_JOB_FAILED);
    assert_int_equal(rx_job_get_progress(job, &status, &progress), RX_OK);
    assert_int_equal(status, RX_JOB_FAILED);
    assert_int_equal(progress.n_tasks, 20);
    assert_int_equal(progress.ok, 19);
    assert_int_equal(progress.failed, 1);
    assert_int_equal(progress.pending + progress.running, 0);

    log_text[0] = '\0';
    rx_set_log(capture_log, NULL);
    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_INHERIT, &res), RX_EJOBFAILED);
    rx_set_log(NULL, NULL);
    (void)snprintf(warn, sizeof(warn), "collecting results of job %lld: 1 of 20 tasks failed",
                   (long long)rx_job_id(job));
    assert_non_null(strstr(log_text, warn));
    assert_int_equal(rx_results_count(res), 20);
    assert_int_equal(rx_results_status(res), RX_JOB_FAILED);
    assert_int_equal(rx_results_failed(res), 1);
    for (size_t i = 0; i < 20; i++) {
        if (i == 13) {
            assert_int_equal(rx_results_state(res, i), RX_TASK_ERROR);
            assert_null(rx_results_value(res, i, NULL));
            assert_string_equal(rx_results_error(res, i), "task 13 refuses: unlucky number");
            continue;
        }
        (void)snprintf(want, sizeof(want), "value %zu", i);
        assert_int_equal(rx_results_state(res, i), RX_TASK_OK);
        assert_string_equal(rx_results_value(res, i, NULL), want);
    }
    rx_results_free(res);
    assert_int_equal(rx_get_job_status(job), RX_JOB_UNDETERMINED);
    rx_job_free(job);
    rx_context_free(ctx);
}

/* continue_on_failure false, one task at a time: FAILED, and tasks after 13 never start. */
static void
test_server_fail13_stop(void **state)
{
    char paths[20][PATH_MAX];
    rx_buf args[20];
    rx_context *ctx;
    rx_job *job;
    rx_results *res = NULL;
    rx_work work = rx_work_function(fail13);
    rx_exec_opts opts = RX_EXEC_OPTS_INIT;

    (void)state;
    skip_without_daemon();
    for (size_t i = 0; i < 20; i++) {
        char name[64];

        (void)snprintf(name, sizeof(name), "stop-started-%zu", i);
        tmp_path(paths[i], sizeof(paths[i]), name);
        args[i].data = paths[i];
        args[i].len = strlen(paths[i]);
    }
    ctx = server();
    opts.elem_args = args;
    opts.n_elem_args = 20;
    opts.num_tasks = 1;
    opts.continue_on_failure = RX_FALSE;
    job = submit(ctx, &work, &opts);
    assert_int_equal(rx_wait_for_job(job, 60), RX_OK);
    assert_int_equal(rx_get_job_status(job), RX_JOB_FAILED);
    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_INHERIT, &res), RX_EJOBFAILED);
    assert_int_equal(rx_results_count(res), 20);
    for (size_t i = 0; i < 13; i++) {
        assert_int_equal(rx_results_state(res, i), RX_TASK_OK);
        assert_true(file_exists(paths[i]));
    }
    assert_int_equal(rx_results_state(res, 13), RX_TASK_ERROR);
    for (size_t i = 14; i < 20; i++) {
        assert_int_equal(rx_results_state(res, i), RX_TASK_NOT_RUN);
        assert_non_null(rx_results_error(res, i));
        assert_false(file_exists(paths[i]));
    }
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
}

/* A waiting context: rx_exec hands back the results, in task order, as local contexts do. */
static void
test_server_waiting_context(void **state)
{
    static const char bytes[] = {'a', '\0', 'b', '\xff', '\n'};
    rx_buf args[3] = {{"one", 3}, {bytes, sizeof(bytes)}, {NULL, 0}};
    rx_context *ctx;
    rx_results *res = NULL;
    rx_job *job = NULL;
    rx_work work = rx_work_function(echo_bytes);
    rx_work bad = rx_work_function(fail13);
    rx_exec_opts opts = RX_EXEC_OPTS_INIT;
    size_t len = 0;
    const void *v;

    (void)state;
    skip_without_daemon();
    ctx = server();
    assert_int_equal(rx_context_set_wait(ctx, 1), RX_OK);
    opts.elem_args = args;
    opts.n_elem_args = 3;
    assert_int_equal(rx_exec(ctx, &work, &opts, &res, &job), RX_OK);
    assert_null(job);
    assert_int_equal(rx_results_count(res), 3);
    assert_int_equal(rx_results_status(res), RX_JOB_FINISHED);
    v = rx_results_value(res, 0, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(v, "one", 3);
    v = rx_results_value(res, 1, &len); /* bytes round-trip, NUL and 0xff included */
    assert_int_equal(len, sizeof(bytes));
    assert_memory_equal(v, bytes, sizeof(bytes));
    v = rx_results_value(res, 2, &len);
    assert_int_equal(len, 0);
    assert_string_equal(v, "");
    rx_results_free(res);
    res = NULL;

    /* A failing job: RX_EJOBFAILED with the results all the same. */
    opts = (rx_exec_opts)RX_EXEC_OPTS_INIT;
    opts.times_to_run = 14;
    assert_int_equal(rx_exec(ctx, &bad, &opts, &res, NULL), RX_EJOBFAILED);
    assert_int_equal(rx_results_count(res), 14);
    assert_int_equal(rx_results_failed(res), 1);
    assert_int_equal(rx_results_state(res, 13), RX_TASK_ERROR);
    rx_results_free(res);
    rx_context_free(ctx);
}

/* The default task count on a server is num_tasks (at least 1); a command sees its argument,
 * stdin, environment and working directory. */
static void
test_server_command_count_env_cwd(void **state)
{
    const char *const argv[] = {
        "sh",
        "-c",
        "printf '%s|%s|%s|%s|%s|%s' \"$1\" \"$(cat)\" \"$TEST_SERVER_VAR\" \"$(pwd)\" "
        "\"$RXJOB_TASK_INDEX\" \"$TEST_SERVER_CALLER\" > \"$RXJOB_RESULT\"",
        "sh",
        "{}",
        NULL};
    const char *const env[] = {"TEST_SERVER_VAR=from work", NULL};
    rx_buf args[2] = {{"x y", 3}, {"z", 1}};
    rx_context *ctx;
    rx_job *job;
    rx_results *res = NULL;
    rx_work work = rx_work_command(argv);
    rx_exec_opts opts = RX_EXEC_OPTS_INIT;
    char want[PATH_MAX * 2];

    (void)state;
    skip_without_daemon();
    ctx = server();
    work.env = env;
    work.cwd = tmpdir;
    work.stdin_data = "in";
    work.stdin_len = 2;
    opts.elem_args = args;
    opts.n_elem_args = 2;
    /* The caller's environment goes with the job (as sbatch exports it); RXJOB_* never does. */
    setenv("TEST_SERVER_CALLER", "from caller", 1);
    setenv("RXJOB_TASK_INDEX", "999", 1);
    job = submit(ctx, &work, &opts);
    unsetenv("TEST_SERVER_CALLER");
    unsetenv("RXJOB_TASK_INDEX");
    assert_int_equal(rx_wait_for_job(job, 30), RX_OK);
    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_INHERIT, &res), RX_OK);
    (void)snprintf(want, sizeof(want), "x y|in|from work|%s|0|from caller", tmpdir);
    assert_string_equal(rx_results_value(res, 0, NULL), want);
    (void)snprintf(want, sizeof(want), "z|in|from work|%s|1|from caller", tmpdir);
    assert_string_equal(rx_results_value(res, 1, NULL), want);
    rx_results_free(res);
    rx_job_free(job);

    /* Neither elem_args nor times_to_run: num_tasks tasks. */
    work = rx_work_command((const char *const[]){"true", NULL});
    opts = (rx_exec_opts)RX_EXEC_OPTS_INIT;
    opts.num_tasks = 3;
    job = submit(ctx, &work, &opts);
    assert_int_equal(rx_wait_for_job(job, 30), RX_OK);
    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_INHERIT, &res), RX_OK);
    assert_int_equal(rx_results_count(res), 3);
    rx_results_free(res);
    rx_job_free(job);
    opts.num_tasks = 0;
    job = submit(ctx, &work, &opts);
    assert_int_equal(rx_wait_for_job(job, 30), RX_OK);
    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_INHERIT, &res), RX_OK);
    assert_int_equal(rx_results_count(res), 1);
    rx_results_free(res);
    rx_job_free(job);

    /* A failing command: its exit status in the slot. */
    work = rx_work_command((const char *const[]){"sh", "-c", "exit 3", NULL});
    job = submit(ctx, &work, &opts);
    assert_int_equal(rx_wait_for_job(job, 30), RX_OK);
    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_INHERIT, &res), RX_EJOBFAILED);
    assert_int_equal(rx_results_state(res, 0), RX_TASK_EXIT);
    assert_int_equal(rx_results_exit_status(res, 0), 3);
    assert_non_null(rx_results_error(res, 0));
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
}

/* console_output: RX_TRUE (or the job's setting) writes the output to stdout before the
 * results are handed back; RX_FALSE writes nothing. */
static void
test_server_results_console_output(void **state)
{
    char capture[PATH_MAX];
    rx_context *ctx;
    rx_job *job;
    rx_results *res = NULL;
    rx_work work = rx_work_function(greet);
    rx_exec_opts opts = RX_EXEC_OPTS_INIT;
    char buf[4096];
    int saved, fd;
    ssize_t got;

    (void)state;
    skip_without_daemon();
    ctx = server();
    tmp_path(capture, sizeof(capture), "stdout-capture");
    opts.times_to_run = 2;
    opts.console_output = RX_TRUE; /* the job's setting; collected with RX_INHERIT */
    job = submit(ctx, &work, &opts);
    assert_int_equal(rx_wait_for_job(job, 30), RX_OK);

    fflush(stdout);
    saved = dup(1);
    fd = open(capture, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 1);
    close(fd);
    assert_int_equal(rx_get_job_results(job, RX_INHERIT, RX_INHERIT, &res), RX_OK);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);

    fd = open(capture, O_RDONLY);
    got = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    assert_true(got > 0);
    buf[got] = '\0';
    assert_non_null(strstr(buf, "==> task 0 <=="));
    assert_non_null(strstr(buf, "hello from task 0"));
    assert_non_null(strstr(buf, "==> task 1 <=="));
    assert_non_null(strstr(buf, "hello from task 1"));
    assert_true(strstr(buf, "task 0 <==") < strstr(buf, "task 1 <=="));
    assert_string_equal(rx_results_value(res, 1, NULL), "hi 1");
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
}

/* rx_get_jobs: states and the creation-time window. */
static void
test_server_get_jobs_filter(void **state)
{
    const char *const argv[] = {"true", NULL};
    rx_context *ctx;
    rx_job *job;
    rx_job **jobs = NULL;
    rx_job_filter filter = {0};
    size_t n = 99;
    double now_s = (double)time(NULL);
    int found;

    (void)state;
    skip_without_daemon();
    ctx = server();
    assert_int_equal(rx_context_set_auto_cleanup(ctx, 0), RX_OK);
    job = submit_command(ctx, argv);
    assert_int_equal(rx_wait_for_job(job, 30), RX_OK);

    struct {
        unsigned states;
        double since_s, until_s;
        int want;
    } cases[] = {
        {0, 0, 0, 1},
        {1u << RX_JOB_FINISHED, 0, 0, 1},
        {(1u << RX_JOB_FINISHED) | (1u << RX_JOB_UNDETERMINED), 0, 0, 1},
        {1u << RX_JOB_FAILED, 0, 0, 0},
        {1u << RX_JOB_UNDETERMINED, 0, 0, 0},
        {0, now_s - 60, now_s + 60, 1},
        {0, now_s + 3600, 0, 0},
        {0, 0, now_s - 3600, 0},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        filter.states = cases[c].states;
        filter.since_s = cases[c].since_s;
        filter.until_s = cases[c].until_s;
        assert_int_equal(rx_get_jobs(ctx, &filter, &jobs, &n), RX_OK);
        found = 0;
        for (size_t i = 0; i < n; i++)
            found += rx_job_id(jobs[i]) == rx_job_id(job);
        if (found != cases[c].want)
            fail_msg("case %zu: found %d, want %d", c, found, cases[c].want);
        /* Oldest first. */
        for (size_t i = 1; i < n; i++)
            assert_true(rx_job_id(jobs[i - 1]) < rx_job_id(jobs[i]));
        rx_jobs_free(jobs, n);
        jobs = NULL;
    }
    filter.states = 1u << RX_JOB_STATUS_COUNT;
    assert_int_equal(rx_get_jobs(ctx, &filter, &jobs, &n), RX_EINVAL);
    filter.states = 0;
    filter.since_s = -1;
    assert_int_equal(rx_get_jobs(ctx, &filter, &jobs, &n), RX_EINVAL);
    assert_int_equal(rx_cleanup_jobs(&job, 1, 1, NULL), RX_OK);
    rx_job_free(job);
    rx_context_free(ctx);
}

/* What rx_exec refuses on a server context, and what the daemon refuses with its message. */
static void
test_server_bad_input(void **state)
{
    rx_context *ctx, *local = NULL;
    rx_job *job = NULL;
    rx_job **jobs = NULL;
    rx_results *res = NULL;
    rx_work work = rx_work_function(unregistered);
    rx_exec_opts opts = RX_EXEC_OPTS_INIT;
    size_t n = 0;

    (void)state;
    skip_without_daemon();
    ctx = server();
    /* An unregistered function cannot run in another process. */
    assert_int_equal(rx_exec(ctx, &work, &opts, NULL, &job), RX_EINVAL);
    assert_null(job);
    assert_non_null(strstr(rx_context_errmsg(ctx), "RX_FUNCTION"));
    work.name = "no_such_function";
    assert_int_equal(rx_exec(ctx, &work, &opts, NULL, &job), RX_EINVAL);
    /* A registered name is enough, whatever the pointer. */
    work = rx_work_function(unregistered);
    work.name = "echo_bytes";
    job = submit(ctx, &work, &opts);
    assert_int_equal(rx_wait_for_job(job, 30), RX_OK);
    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_INHERIT, &res), RX_OK);
    rx_results_free(res);
    rx_job_free(job);
    job = NULL;

    /* Non-waiting needs out_job. */
    work = rx_work_function(greet);
    assert_int_equal(rx_exec(ctx, &work, &opts, &res, NULL), RX_EINVAL);

    /* Over the daemon's task limit (the library's is higher): the daemon's 413, its message
     * naming the limit. */
    work = rx_work_command((const char *const[]){"true", NULL});
    opts.times_to_run = 2000000;
    assert_int_equal(rx_exec(ctx, &work, &opts, NULL, &job), RX_ETOOBIG);
    assert_null(job);
    assert_non_null(strstr(rx_context_errmsg(ctx), "HTTP 413"));
    assert_non_null(strstr(rx_context_errmsg(ctx),
                           "tasks_per_job limit exceeded: 2000000 > 1000000 tasks (rxjobd --limit "
                           "tasks_per_job=...)"));

    /* URLs, handles and local contexts. */
    assert_int_equal(rx_server_context("http://localhost:1234", &local), RX_EINVAL);
    assert_int_equal(rx_server_context("unix:", &local), RX_EINVAL);
    assert_int_equal(rx_server_context(main_url, NULL), RX_EINVAL);
    assert_int_equal(rx_job_open(ctx, 0, &job), RX_EINVAL);
    assert_int_equal(rx_job_open(ctx, -5, &job), RX_EINVAL);
    assert_int_equal(rx_job_open(NULL, 1, &job), RX_EINVAL);
    assert_int_equal(rx_local_context(&local), RX_OK);
    assert_int_equal(rx_job_open(local, 1, &job), RX_ENOTSUP);
    assert_int_equal(rx_get_jobs(local, NULL, &jobs, &n), RX_ENOTSUP);
    assert_int_equal(rx_get_job_status(NULL), RX_JOB_UNDETERMINED);
    assert_int_equal(rx_wait_for_job(NULL, 1), RX_EINVAL);
    assert_int_equal(rx_cancel_job(NULL, NULL), RX_EINVAL);
    assert_int_equal(rx_get_job_results(NULL, RX_INHERIT, RX_INHERIT, &res), RX_EINVAL);
    assert_int_equal(rx_get_job_output(NULL, stdout), RX_EINVAL);
    assert_int_equal(rx_cleanup_jobs(NULL, 1, 0, NULL), RX_EINVAL);
    assert_int_equal(rx_cleanup_jobs(NULL, 0, 0, &n), RX_OK);
    assert_int_equal(n, 0);
    assert_int_equal(rx_get_jobs(ctx, NULL, NULL, &n), RX_EINVAL);
    assert_int_equal(rx_job_open(ctx, 1, &job), RX_OK);
    assert_int_equal(rx_get_job_results(job, (rx_tristate)7, RX_INHERIT, &res), RX_EINVAL);
    assert_int_equal(rx_get_job_output(job, NULL), RX_EINVAL);
    rx_job_free(job);
    rx_job_free(NULL);
    rx_jobs_free(NULL, 3);
    rx_context_free(local);
    rx_context_free(ctx);
}

/* rx_register_function's checks, and what rx_init does with a task it cannot run as asked. */
static void
test_server_rx_init(void **state)
{
    char name129[130], self[PATH_MAX];
    const char *argv[] = {"sh", "-c",
                          "RXJOB_FUNCTION=no_such RXJOB_ERROR=\"$RXJOB_RESULT\" \"$0\"; "
                          "printf ' %d' $? >> \"$RXJOB_RESULT\"",
                          self, NULL};
    rx_work work = rx_work_function(fail_quietly);
    rx_context *ctx;
    rx_job *job;
    rx_results *res = NULL;

    (void)state;
    memset(name129, 'a', 129);
    name129[129] = '\0';
    assert_int_equal(rx_register_function(NULL, echo_bytes), RX_EINVAL);
    assert_int_equal(rx_register_function("", echo_bytes), RX_EINVAL);
    assert_int_equal(rx_register_function("has space", echo_bytes), RX_EINVAL);
    assert_int_equal(rx_register_function("slash/no", echo_bytes), RX_EINVAL);
    assert_int_equal(rx_register_function(name129, echo_bytes), RX_EINVAL);
    assert_int_equal(rx_register_function("ok", NULL), RX_EINVAL);
    name129[128] = '\0';
    assert_int_equal(rx_register_function(name129, echo_bytes), RX_OK); /* 128 bytes: fine */
    assert_int_equal(rx_register_function("A-z_0.9", echo_bytes), RX_OK);
    assert_int_equal(rx_register_function("A-z_0.9", greet), RX_OK); /* replaces */

    skip_without_daemon();
    assert_non_null(realpath("/proc/self/exe", self));
    ctx = server();
    /* A function that fails without rx_task_fail. */
    job = submit(ctx, &work, NULL);
    assert_int_equal(rx_wait_for_job(job, 30), RX_OK);
    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_INHERIT, &res), RX_EJOBFAILED);
    assert_int_equal(rx_results_state(res, 0), RX_TASK_ERROR);
    assert_string_equal(rx_results_error(res, 0), "function 'fail_quietly' returned 5");
    rx_results_free(res);
    res = NULL;
    rx_job_free(job);

    /* This program run for a function it does not have: exit status 127, and why. */
    job = submit_command(ctx, argv);
    assert_int_equal(rx_wait_for_job(job, 30), RX_OK);
    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_INHERIT, &res), RX_OK);
    assert_string_equal(rx_results_value(res, 0, NULL),
                        "no function named 'no_such' is registered in this program "
                        "(RX_FUNCTION) 127");
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
}

/* Every allocation failure on the client side is RX_ENOMEM and leaks nothing (ASan checks);
 * nothing is collected or removed on the daemon by a call that fails. */
static void
test_server_out_of_memory(void **state)
{
    const char *const argv[] = {"sh", "-c",
                                "printf 'v%s' \"$RXJOB_TASK_INDEX\" > \"$RXJOB_RESULT\"", NULL};
    rx_context *ctx, *c = NULL;
    rx_job *job, *j = NULL;
    rx_job **jobs = NULL;
    rx_results *res = NULL;
    rx_work work = rx_work_command(argv);
    rx_exec_opts opts = RX_EXEC_OPTS_INIT;
    size_t n = 0;
    int ok = 0;

    (void)state;
    skip_without_daemon();
    ctx = server();
    assert_int_equal(rx_context_set_auto_cleanup(ctx, 0), RX_OK);
    opts.times_to_run = 3;
    job = submit(ctx, &work, &opts);
    assert_int_equal(rx_wait_for_job(job, 30), RX_OK);

    for (long fail = 0; fail < 1000 && ok != 0xf; fail++) {
        rx_err err;

        rx__alloc_fail_after(fail);
        err = rx_server_context(main_url, &c);
        rx__alloc_fail_after(-1);
        assert_true(err == RX_OK || err == RX_ENOMEM);
        if (err == RX_OK) {
            ok |= 1;
            rx_context_free(c);
            c = NULL;
        }

        rx__alloc_fail_after(fail);
        err = rx_job_open(ctx, rx_job_id(job), &j);
        rx__alloc_fail_after(-1);
        assert_true(err == RX_OK || err == RX_ENOMEM);
        if (err == RX_OK) {
            ok |= 2;
            rx_job_free(j);
            j = NULL;
        }

        rx__alloc_fail_after(fail);
        err = rx_get_jobs(ctx, NULL, &jobs, &n);
        rx__alloc_fail_after(-1);
        assert_true(err == RX_OK || err == RX_ENOMEM);
        if (err == RX_OK) {
            ok |= 4;
            assert_true(n >= 1);
            rx_jobs_free(jobs, n);
            jobs = NULL;
        }

        rx__alloc_fail_after(fail);
        err = rx_get_job_results(job, RX_FALSE, RX_FALSE, &res);
        rx__alloc_fail_after(-1);
        assert_true(err == RX_OK || err == RX_ENOMEM);
        if (err == RX_OK) {
            ok |= 8;
            assert_string_equal(rx_results_value(res, 2, NULL), "v2");
            rx_results_free(res);
            res = NULL;
        }
        assert_int_equal(rx_get_job_status(job), RX_JOB_FINISHED);
    }
    assert_int_equal(ok, 0xf);
    assert_int_equal(rx_cleanup_jobs(&job, 1, 1, NULL), RX_OK);
    rx_job_free(job);
    rx_context_free(ctx);
}

/* A daemon that is not there: status UNDETERMINED, the rest RX_ECONTEXT with a reason; a
 * "unix:" url is never started. */
static void
test_server_unreachable(void **state)
{
    char url[PATH_MAX + 8], sock[PATH_MAX];
    const char *const argv[] = {"true", NULL};
    rx_work work = rx_work_command(argv);
    rx_context *ctx = NULL;
    rx_job *job = NULL;
    rx_job **jobs = NULL;
    rx_results *res = NULL;
    size_t n = 0;
    int canceled = -1;

    (void)state;
    skip_without_daemon();
    tmp_path(sock, sizeof(sock), "nobody-here.sock");
    (void)snprintf(url, sizeof(url), "unix:%s", sock);
    assert_int_equal(rx_server_context(url, &ctx), RX_OK);
    assert_int_equal(rx_job_open(ctx, 1, &job), RX_OK);
    assert_int_equal(rx_get_job_status(job), RX_JOB_UNDETERMINED);
    assert_int_equal(rx_wait_for_job(job, 1), RX_ECONTEXT);
    assert_non_null(strstr(rx_context_errmsg(ctx), sock));
    assert_int_equal(rx_cancel_job(job, &canceled), RX_ECONTEXT);
    assert_int_equal(canceled, -1);
    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_INHERIT, &res), RX_ECONTEXT);
    assert_int_equal(rx_get_job_output(job, stdout), RX_ECONTEXT);
    assert_int_equal(rx_cleanup_jobs(&job, 1, 0, &n), RX_ECONTEXT);
    rx_job_free(job);
    job = NULL;
    assert_int_equal(rx_exec(ctx, &work, NULL, NULL, &job), RX_ECONTEXT);
    assert_null(job);
    assert_int_equal(rx_get_jobs(ctx, NULL, &jobs, &n), RX_ECONTEXT);
    assert_false(file_exists(sock));
    rx_context_free(ctx);
}

/* Processes whose command line holds needle, other than this one. */
static int
count_processes_with(const char *needle)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char path[300], cmd[8192];
        ssize_t got;
        int fd;

        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        (void)snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        got = read(fd, cmd, sizeof(cmd) - 1);
        close(fd);
        if (got <= 0)
            continue;
        for (ssize_t i = 0; i < got; i++)
            cmd[i] = cmd[i] == '\0' ? ' ' : cmd[i];
        cmd[got] = '\0';
        if (strstr(cmd, needle) != NULL && strstr(cmd, "rxjobd") != NULL)
            n++;
    }
    closedir(d);
    return n;
}

/* Stop the daemon on sock: SIGTERM to every rxjobd whose command line names it, then wait until
 * none is left. */
static void
stop_daemons_on(const char *sock)
{
    DIR *d;
    struct dirent *e;

    d = opendir("/proc");
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char path[300], cmd[8192];
        ssize_t got;
        int fd;

        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        (void)snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        got = read(fd, cmd, sizeof(cmd) - 1);
        close(fd);
        if (got <= 0)
            continue;
        for (ssize_t i = 0; i < got; i++)
            cmd[i] = cmd[i] == '\0' ? ' ' : cmd[i];
        cmd[got] = '\0';
        if (strstr(cmd, sock) != NULL && strstr(cmd, "rxjobd") != NULL)
            kill((pid_t)strtol(e->d_name, NULL, 10), SIGTERM);
    }
    closedir(d);
    for (int i = 0; i < 1000 && count_processes_with(sock) > 0; i++)
        sleep_ms(10);
}

/* The embedded default: nothing answers, so the first call that needs the daemon starts it;
 * a status query never does; two processes starting it at once end with one daemon. */
static void
test_server_embedded_default(void **state)
{
    char sock[PATH_MAX], sock2[PATH_MAX], state_dir[PATH_MAX], state2[PATH_MAX];
    const char *const argv[] = {"sh", "-c", "printf up > \"$RXJOB_RESULT\"", NULL};
    rx_context *ctx = NULL;
    rx_job *job = NULL;
    rx_results *res = NULL;
    pid_t kids[2];

    (void)state;
    skip_without_daemon();
    tmp_path(sock, sizeof(sock), "default/run/rxjobd.sock");
    tmp_path(state_dir, sizeof(state_dir), "default/state");
    setenv("RXJOB_SOCKET", sock, 1);
    setenv("RXJOB_STATE_DIR", state_dir, 1);
    setenv("RXJOB_DAEMON", daemon_path, 1);

    assert_int_equal(rx_server_context(NULL, &ctx), RX_OK);
    assert_false(file_exists(sock)); /* no connection at creation */
    assert_int_equal(rx_job_open(ctx, 1, &job), RX_OK);
    assert_int_equal(rx_get_job_status(job), RX_JOB_UNDETERMINED);
    assert_false(socket_answers(sock)); /* a status query never starts the daemon */
    rx_job_free(job);
    job = NULL;

    job = submit_command(ctx, argv); /* starts it */
    assert_true(socket_answers(sock));
    assert_int_equal(rx_wait_for_job(job, 30), RX_OK);
    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_INHERIT, &res), RX_OK);
    assert_string_equal(rx_results_value(res, 0, NULL), "up");
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
    assert_int_equal(count_processes_with(sock), 1);
    stop_daemons_on(sock);
    assert_false(socket_answers(sock));

    /* Two processes at once, on a fresh socket: both get an answer, one daemon is left. */
    tmp_path(sock2, sizeof(sock2), "default/run/race.sock");
    tmp_path(state2, sizeof(state2), "default/race-state");
    setenv("RXJOB_SOCKET", sock2, 1);
    setenv("RXJOB_STATE_DIR", state2, 1);
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            rx_context *c = NULL;
            rx_job **jobs = NULL;
            size_t n = 0;
            int ok =
                rx_server_context(NULL, &c) == RX_OK && rx_get_jobs(c, NULL, &jobs, &n) == RX_OK;

            if (!ok)
                fprintf(stderr, "race child: %s\n", rx_context_errmsg(c));
            rx_jobs_free(jobs, n);
            rx_context_free(c);
            _exit(ok ? 0 : 1);
        }
    }
    for (int k = 0; k < 2; k++) {
        int st = 0;

        assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    assert_true(socket_answers(sock2));
    sleep_ms(200); /* a refused second daemon has exited by now */
    assert_int_equal(count_processes_with(sock2), 1);
    stop_daemons_on(sock2);

    unsetenv("RXJOB_SOCKET");
    unsetenv("RXJOB_STATE_DIR");
    unsetenv("RXJOB_DAEMON");
}

/* ---------------------------------------------------------------------------------------------
 * Suite
 * ------------------------------------------------------------------------------------------- */

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
    /* build/tests/test_server -> build/rxjobd */
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

static void
remove_tree(const char *path)
{
    pid_t pid = fork();

    if (pid == 0) {
        execlp("rm", "rm", "-rf", path, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_lifecycle),
        cmocka_unit_test(test_server_slot_times_and_exit_status),
        cmocka_unit_test(test_server_keep_and_cleanup),
        cmocka_unit_test(test_server_running_job),
        cmocka_unit_test(test_server_cancel_running),
        cmocka_unit_test(test_server_cancel_queued),
        cmocka_unit_test(test_server_cancel_finished),
        cmocka_unit_test(test_server_cancel_at_random),
        cmocka_unit_test(test_server_concurrent_calls),
        cmocka_unit_test(test_server_undetermined),
        cmocka_unit_test(test_server_fail13_continue),
        cmocka_unit_test(test_server_fail13_stop),
        cmocka_unit_test(test_server_waiting_context),
        cmocka_unit_test(test_server_command_count_env_cwd),
        cmocka_unit_test(test_server_results_console_output),
        cmocka_unit_test(test_server_get_jobs_filter),
        cmocka_unit_test(test_server_bad_input),
        cmocka_unit_test(test_server_rx_init),
        cmocka_unit_test(test_server_out_of_memory),
        cmocka_unit_test(test_server_unreachable),
        cmocka_unit_test(test_server_embedded_default),
    };
    char tmpl[] = "/tmp/rxjob-server-test-XXXXXX";
    char sock[PATH_MAX];
    int rc;

    /* When rxjobd started this program to run a task, this runs it and exits. */
    rx_init(&argc, &argv);

    find_daemon();
    if (daemon_path[0] == '\0')
        fprintf(stderr, "test_server: no rxjobd found (set RXJOB_TEST_DAEMON): skipping\n");
    if (mkdtemp(tmpl) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    (void)snprintf(tmpdir, sizeof(tmpdir), "%s", tmpl);
    tmp_path(sock, sizeof(sock), "main.sock");
    (void)snprintf(main_url, sizeof(main_url), "unix:%s", sock);
    if (daemon_path[0] != '\0') {
        main_daemon = start_daemon("main", "4");
        if (main_daemon <= 0)
            fprintf(stderr, "test_server: rxjobd did not start: skipping\n");
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    stop_daemon(main_daemon);
    if (rc == 0 && getenv("RXJOB_TEST_KEEP") == NULL)
        remove_tree(tmpdir);
    else
        fprintf(stderr, "test_server: files kept in %s\n", tmpdir);
    return rc;
}
