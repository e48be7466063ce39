/*
 * bench_rxapi - rxjob's side of bench/compare's workloads through the C API, against a daemon
 * that is already running (bench/compare starts it, with --slots 2, and runs the peers' side of
 * each workload right before or after this one).
 *
 *     bench_rxapi --url unix:/path/to/socket MODE ARGS
 *
 * Modes (each runs its workload once and prints one line of key=value pairs on stdout):
 *   w1 N            submit N jobs of one `true` task (non-waiting context), then wait for all:
 *                   submit_s, done_s (first submit -> last job over), jobs_per_s = N / done_s
 *   w2 N            N times: one job of one `true` task, from before rx_exec to the return of
 *                   rx_wait_for_job (the job FINISHED): p50_ms, p99_ms (nearest rank)
 *   w3 N            N rx_get_job_status calls on one finished job: p50_ms
 *   w4cmd N [CHUNK] one job of N `true` tasks (times_to_run): tasks_per_s, from before rx_exec
 *                   to the return of rx_wait_for_job; with CHUNK, task_chunk_size CHUNK (one
 *                   supervisor runs CHUNK tasks in a row)
 *   w4fn N CHUNK    one job of N C-function tasks with task_chunk_size CHUNK: the daemon runs
 *                   this program again per chunk (rx_init), each task sets its result to its
 *                   index; tasks_per_s as w4cmd
 *
 * Each mode first runs one `true` job untimed (warm_up: the library's first request to a daemon
 * loads libcurl and libcrypto, once per process). Every job's results are collected
 * (auto-cleanup) and checked after the timed part: a job that
 * does not FINISH, or a wrong or missing result, stops the benchmark with exit status 1. Exit
 * status 2 on a usage error.
 */
#define _GNU_SOURCE

#include "bench_common.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <rxjob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JOB_WAIT_S   600.0    /* longest wait for one job */
#define MAX_COUNT    1000000L /* the most jobs, queries or tasks one mode runs */
#define MAX_CHUNK    1000000L /* the largest task_chunk_size */
#define RESULT_BYTES 24       /* a function task's result: its index in decimal */

static const char *const true_argv[] = {"true", NULL};

RX_FUNCTION(bench_index)
{
    char buf[RESULT_BYTES];

    (void)snprintf(buf, sizeof(buf), "%zu", rx_task_index(task));
    return rx_task_set_result_str(task, buf) == RX_OK ? 0 : -1;
}

static int64_t
monotonic_ns(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double
ms_since(int64_t t0_ns)
{
    return (double)(monotonic_ns() - t0_ns) / 1e6;
}

/* The p-quantile of n samples by nearest rank. Sorts v. */
static double
percentile(double *v, size_t n, double p)
{
    size_t rank;

    qsort(v, n, sizeof(*v), bench_compare_double);
    rank = (size_t)ceil(p * (double)n);
    return v[rank < 1 ? 0 : rank - 1];
}

static void
report_error(const char *what, rx_context *ctx, rx_err err)
{
    const char *msg = ctx != NULL ? rx_context_errmsg(ctx) : "";

    fprintf(stderr, "bench_rxapi: %s: %s (%s)%s%s\n", what, rx_errname(err), rx_strerror(err),
            msg[0] ? ": " : "", msg);
}

/* Wait until job is over. Returns 0 or -1. */
static int
wait_job(rx_context *ctx, rx_job *job)
{
    rx_err err = rx_wait_for_job(job, JOB_WAIT_S);

    if (err != RX_OK) {
        report_error("rx_wait_for_job", ctx, err);
        return -1;
    }
    return 0;
}

/* Collect (with auto-cleanup) and check the results of a job that is over: n_tasks slots, all
 * OK; with want_index, slot i holds "i". Returns 0 or -1. */
static int
collect_job(rx_context *ctx, rx_job *job, size_t n_tasks, int want_index)
{
    rx_results *res = NULL;
    rx_err err = rx_get_job_results(job, RX_FALSE, RX_TRUE, &res);
    int rc = -1;

    if (err != RX_OK) {
        report_error("rx_get_job_results", ctx, err);
        goto done;
    }
    if (rx_results_count(res) != n_tasks || rx_results_failed(res) != 0) {
        fprintf(stderr, "bench_rxapi: job %" PRId64 ": %zu results (want %zu), %zu failed%s%s\n",
                rx_job_id(job), rx_results_count(res), n_tasks, rx_results_failed(res),
                rx_results_failed(res) ? "; first: " : "",
                rx_results_failed(res) ? rx_results_error(res, 0) : "");
        goto done;
    }
    for (size_t i = 0; want_index && i < n_tasks; i++) {
        char want[RESULT_BYTES];
        const char *got = rx_results_value(res, i, NULL);

        (void)snprintf(want, sizeof(want), "%zu", i);
        if (got == NULL || strcmp(got, want) != 0) {
            fprintf(stderr, "bench_rxapi: task %zu: result '%s', want '%s'\n", i,
                    got ? got : "(none)", want);
            goto done;
        }
    }
    rc = 0;
done:
    rx_results_free(res);
    return rc;
}

static int
submit(rx_context *ctx, const rx_work *work, const rx_exec_opts *opts, rx_job **out_job)
{
    rx_err err = rx_exec(ctx, work, opts, NULL, out_job);

    if (err != RX_OK) {
        report_error("rx_exec", ctx, err);
        return -1;
    }
    return 0;
}

/* One `true` job, submitted, waited for and collected, untimed: the library loads libcurl and
 * libcrypto on its first request to a daemon (src/client/dynlib.c), about 5 ms once per
 * process, which is not a job's latency. Returns 0 or -1. */
static int
warm_up(rx_context *ctx)
{
    rx_work work = rx_work_command(true_argv);
    rx_job *job = NULL;
    int rc = submit(ctx, &work, NULL, &job) != 0 || wait_job(ctx, job) != 0 ||
                     collect_job(ctx, job, 1, 0) != 0
                 ? -1
                 : 0;

    rx_job_free(job);
    return rc;
}

static int
mode_w1(rx_context *ctx, size_t n)
{
    rx_work work = rx_work_command(true_argv);
    rx_job **jobs = calloc(n, sizeof(*jobs));
    double submit_s, done_s;
    int64_t t0;
    size_t i;
    int rc = -1;

    if (jobs == NULL) {
        fprintf(stderr, "bench_rxapi: out of memory\n");
        return -1;
    }
    t0 = monotonic_ns();
    for (i = 0; i < n; i++) {
        if (submit(ctx, &work, NULL, &jobs[i]) != 0)
            goto done;
    }
    submit_s = ms_since(t0) / 1e3;
    for (i = 0; i < n; i++) {
        if (wait_job(ctx, jobs[i]) != 0)
            goto done;
    }
    done_s = ms_since(t0) / 1e3;
    for (i = 0; i < n; i++) {
        if (collect_job(ctx, jobs[i], 1, 0) != 0)
            goto done;
    }
    printf("submit_s=%.4f done_s=%.4f jobs_per_s=%.1f\n", submit_s, done_s, (double)n / done_s);
    rc = 0;
done:
    for (i = 0; i < n; i++)
        rx_job_free(jobs[i]);
    free(jobs);
    return rc;
}

static int
mode_w2(rx_context *ctx, size_t n)
{
    rx_work work = rx_work_command(true_argv);
    double *lat = calloc(n, sizeof(*lat));
    int rc = -1;

    if (lat == NULL) {
        fprintf(stderr, "bench_rxapi: out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        rx_job *job = NULL;
        int64_t t0 = monotonic_ns();
        int bad;

        if (submit(ctx, &work, NULL, &job) != 0)
            goto done;
        bad = wait_job(ctx, job);
        lat[i] = ms_since(t0);
        bad = bad || collect_job(ctx, job, 1, 0);
        rx_job_free(job);
        if (bad)
            goto done;
    }
    printf("p50_ms=%.4f p99_ms=%.4f\n", percentile(lat, n, 0.50), percentile(lat, n, 0.99));
    rc = 0;
done:
    free(lat);
    return rc;
}

static int
mode_w3(rx_context *ctx, size_t n)
{
    rx_work work = rx_work_command(true_argv);
    double *lat = calloc(n, sizeof(*lat));
    rx_job *job = NULL;
    int rc = -1;

    if (lat == NULL) {
        fprintf(stderr, "bench_rxapi: out of memory\n");
        return -1;
    }
    if (submit(ctx, &work, NULL, &job) != 0 || wait_job(ctx, job) != 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        int64_t t0 = monotonic_ns();
        rx_job_status st = rx_get_job_status(job);

        lat[i] = ms_since(t0);
        if (st != RX_JOB_FINISHED) {
            fprintf(stderr, "bench_rxapi: job %" PRId64 " reads %s, want FINISHED\n",
                    rx_job_id(job), rx_job_status_name(st));
            goto done;
        }
    }
    if (collect_job(ctx, job, 1, 0) != 0)
        goto done;
    printf("p50_ms=%.4f\n", percentile(lat, n, 0.50));
    rc = 0;
done:
    rx_job_free(job);
    free(lat);
    return rc;
}

static int
mode_w4(rx_context *ctx, size_t n, int is_function, unsigned chunk)
{
    rx_work work = is_function ? rx_work_function(bench_index) : rx_work_command(true_argv);
    rx_exec_opts opts = RX_EXEC_OPTS_INIT;
    rx_job *job = NULL;
    double elapsed_ms;
    int64_t t0;
    int rc = -1;

    opts.times_to_run = (int64_t)n;
    opts.task_chunk_size = chunk;
    t0 = monotonic_ns();
    if (submit(ctx, &work, &opts, &job) != 0 || wait_job(ctx, job) != 0)
        goto done;
    elapsed_ms = ms_since(t0);
    if (collect_job(ctx, job, n, is_function) != 0)
        goto done;
    printf("tasks_per_s=%.1f elapsed_s=%.4f\n", (double)n / (elapsed_ms / 1e3), elapsed_ms / 1e3);
    rc = 0;
done:
    rx_job_free(job);
    return rc;
}

/* A count argument: 1..max. Returns it, or 0 (said on stderr) if it is not one. */
static long
count_arg(const char *what, const char *s, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > max) {
        fprintf(stderr, "bench_rxapi: %s '%s' is not a count 1..%ld\n", what, s, max);
        return 0;
    }
    return v;
}

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: bench_rxapi --url unix:/path MODE ARGS\n"
            "  modes: w1 N | w2 N | w3 N | w4cmd N [CHUNK] | w4fn N CHUNK (see bench/README.md)\n");
}

int
main(int argc, char **argv)
{
    rx_context *ctx = NULL;
    const char *url, *mode;
    long n, chunk = 0;
    rx_err err;
    int rc;

    rx_init(&argc, &argv); /* runs a function task and exits when rxjobd started us for one */
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc < 5 || strcmp(argv[1], "--url") != 0) {
        usage(stderr);
        return 2;
    }
    url = argv[2];
    mode = argv[3];
    n = count_arg("count", argv[4], MAX_COUNT);
    if (n == 0)
        return 2;
    if (strcmp(mode, "w4fn") == 0 || (strcmp(mode, "w4cmd") == 0 && argc == 6)) {
        if (argc != 6 || (chunk = count_arg("chunk", argv[5], MAX_CHUNK)) == 0) {
            usage(stderr);
            return 2;
        }
    } else if (argc != 5) {
        usage(stderr);
        return 2;
    }
    err = rx_server_context(url, &ctx);
    if (err != RX_OK) {
        report_error("rx_server_context", NULL, err);
        return 2;
    }
    if (strcmp(mode, "w1") != 0 && strcmp(mode, "w2") != 0 && strcmp(mode, "w3") != 0 &&
        strcmp(mode, "w4cmd") != 0 && strcmp(mode, "w4fn") != 0) {
        fprintf(stderr, "bench_rxapi: unknown mode '%s'\n", mode);
        usage(stderr);
        rx_context_free(ctx);
        return 2;
    }
    if (warm_up(ctx) != 0) {
        rx_context_free(ctx);
        return 1;
    }
    if (strcmp(mode, "w1") == 0) {
        rc = mode_w1(ctx, (size_t)n);
    } else if (strcmp(mode, "w2") == 0) {
        rc = mode_w2(ctx, (size_t)n);
    } else if (strcmp(mode, "w3") == 0) {
        rc = mode_w3(ctx, (size_t)n);
    } else if (strcmp(mode, "w4cmd") == 0) {
        rc = mode_w4(ctx, (size_t)n, 0, (unsigned)chunk);
    } else {
        rc = mode_w4(ctx, (size_t)n, 1, (unsigned)chunk);
    }
    rx_context_free(ctx);
    if (fflush(stdout) != 0)
        rc = -1;
    return rc == 0 ? 0 : 1;
}
