/*
 * hello_remote.c - the seed's example of a non-waiting job, in C.
 *
 * A function prints a greeting, sleeps 3 s and returns a string. It is submitted to the server
 * compute context (the per-user rxjobd, started on first use) without waiting, with console
 * output; the status is printed right after the submission; if the job is QUEUED or RUNNING the
 * program waits for it; then it prints the final status, the result and the console output.
 *
 * The function runs in another process: rxjobd runs this same program again with the task
 * handed over, which is why main calls rx_init first (DESIGN.md section 3).
 *
 * Usage: hello_remote [URL]. URL names another daemon, as rx_server_context takes it:
 * "unix:/path/to/socket", or "https://HOST:PORT" for one serving TCP (rxjobd --listen), with the
 * token in $RXJOB_TOKEN or $RXJOB_TOKEN_FILE and its CA in $RXJOB_CA_FILE. The daemon runs this
 * program from the same path, so it must be there on the daemon's host too.
 */
#include "rxjob.h"

#include <stdio.h>
#include <time.h>

RX_FUNCTION(hello)
{
    struct timespec three_s = {3, 0};

    printf("Hello from task %zu of a remote job!\n", rx_task_index(task));
    fflush(stdout);
    nanosleep(&three_s, NULL);
    return rx_task_set_result_str(task, "hello, remote world") == RX_OK ? 0 : -1;
}

static void
print_warning(rx_log_level level, const char *msg, void *user)
{
    (void)user;
    if (level <= RX_LOG_WARN)
        fprintf(stderr, "hello_remote: %s: %s\n", level == RX_LOG_ERROR ? "error" : "warning", msg);
}

int
main(int argc, char **argv)
{
    rx_context *ctx = NULL;
    rx_job *job = NULL;
    rx_results *res = NULL;
    rx_work work = rx_work_function(hello);
    rx_exec_opts opts = RX_EXEC_OPTS_INIT;
    rx_job_status status;
    rx_err err;
    int rc = 1;

    rx_init(&argc, &argv); /* runs the task and exits when rxjobd started us for one */
    rx_set_log(print_warning, NULL);
    if (argc > 2) {
        fprintf(stderr, "usage: hello_remote [unix:/path/to/socket | https://HOST:PORT]\n");
        return 2;
    }
    /* NULL: the per-user daemon. wait defaults to false. */
    err = rx_server_context(argc == 2 ? argv[1] : NULL, &ctx);
    if (err != RX_OK) {
        fprintf(stderr, "hello_remote: server context: %s\n", rx_strerror(err));
        return 1;
    }
    opts.console_output = RX_TRUE;
    err = rx_exec(ctx, &work, &opts, NULL, &job);
    if (err != RX_OK) {
        fprintf(stderr, "hello_remote: submit: %s: %s\n", rx_strerror(err), rx_context_errmsg(ctx));
        goto done;
    }
    status = rx_get_job_status(job);
    printf("job %lld submitted; status right after submit: %s\n", (long long)rx_job_id(job),
           rx_job_status_name(status));
    if (status == RX_JOB_QUEUED || status == RX_JOB_RUNNING) {
        err = rx_wait_for_job(job, -1);
        if (err != RX_OK) {
            fprintf(stderr, "hello_remote: wait: %s\n", rx_strerror(err));
            goto done;
        }
    }
    status = rx_get_job_status(job);
    printf("final status: %s\n", rx_job_status_name(status));
    printf("console output:\n");
    fflush(stdout);
    if (rx_get_job_output(job, stdout) != RX_OK)
        fprintf(stderr, "hello_remote: could not read the job's output\n");
    err = rx_get_job_results(job, RX_FALSE, RX_INHERIT, &res);
    if (err != RX_OK && err != RX_EJOBFAILED) {
        fprintf(stderr, "hello_remote: results: %s: %s\n", rx_strerror(err),
                rx_context_errmsg(ctx));
        goto done;
    }
    if (rx_results_state(res, 0) == RX_TASK_OK)
        printf("result: %s\n", (const char *)rx_results_value(res, 0, NULL));
    else
        printf("error: %s\n", rx_results_error(res, 0));
    printf("status after collecting the results: %s\n", rx_job_status_name(rx_get_job_status(job)));
    rc = status == RX_JOB_FINISHED ? 0 : 1;
done:
    rx_results_free(res);
    rx_job_free(job);
    rx_context_free(ctx);
    return rc;
}
