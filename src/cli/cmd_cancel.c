/*
 * cmd_cancel.c - rxjob cancel ID: cancel the job (rx_cancel_job). Its running tasks get SIGTERM,
 * then SIGKILL after the daemon's grace period; queued tasks never start. The job reads RUNNING
 * until every task process is gone, so rxjob cancel waits for that (as docker stop does), then
 * prints the status, CANCELED, and exits 0.
 *
 * A job already over is left alone, as rx_cancel_job says: its status is printed with a note on
 * stderr, and the exit status is 1 (FINISHED or FAILED: the cancel was refused), 4 (it was
 * CANCELED before) or 5 (UNDETERMINED).
 */
#include "cli.h"

#include <string.h>

static const char usage[] =
    "Usage: rxjob cancel [--json] ID\n"
    "\n"
    "Cancel job ID: stop its running tasks (SIGTERM, then SIGKILL) and start no more.\n"
    "Waits until every task process is gone, then prints CANCELED. Its results and\n"
    "output are removed; its record stays until 'rxjob cleanup'.\n"
    "\n"
    "Options:\n"
    "  --url URL          the daemon to ask (unix:/path or https://HOST:PORT)\n"
    "  --json             print the job as JSON, with \"canceled\": true|false\n"
    "  -h, --help         this help\n";

/* How long cancel waits for the task processes to be gone: well past any grace period. */
#define CANCEL_WAIT_S 120.0

int
cmd_cancel(cli *c, int argc, char **argv)
{
    cli_parser p;
    rx_job *job = NULL;
    rx_job_progress progress;
    rx_job_status status = RX_JOB_UNDETERMINED;
    const char *id_arg = NULL;
    int canceled = 0;
    char what[64];
    rx_err err;
    int rc;

    rc = cli_parse_one_id(c, &p, argc, argv, usage, &id_arg);
    if (rc != CLI_EXIT_OK || id_arg == NULL)
        return rc;

    rc = cli_job_open(c, p.cmd, id_arg, &job);
    if (rc != CLI_EXIT_OK)
        return rc;
    (void)snprintf(what, sizeof(what), "cancel %lld", (long long)rx_job_id(job));
    err = rx_cancel_job(job, &canceled);
    if (err != RX_OK) {
        rc = cli_fail(c, what, err);
        goto done;
    }
    memset(&progress, 0, sizeof(progress));
    if (canceled)
        err = cli_wait_job(job, CANCEL_WAIT_S, &status, &progress);
    else
        err = cli_job_poll(job, &status, &progress);
    if (err != RX_OK && err != RX_ETIMEDOUT) {
        rc = cli_fail(c, what, err);
        goto done;
    }

    if (c->json) {
        json_t *obj = cli_json_job(rx_job_id(job), status, &progress);

        if (obj != NULL && json_object_set_new(obj, "canceled", json_boolean(canceled)) != 0) {
            json_decref(obj);
            obj = NULL;
        }
        rc = cli_json_print(obj);
    } else {
        (void)printf("%s\n", rx_job_status_name(status));
    }
    if (err == RX_ETIMEDOUT) {
        cli_error("%s: the job's processes are still stopping after %g s", what, CANCEL_WAIT_S);
        rc = CLI_EXIT_TIMEOUT;
    } else if (canceled) {
        /* Canceled now; a job that ended on its own meanwhile reads as it ended. */
        if (rc == CLI_EXIT_OK && status != RX_JOB_CANCELED)
            rc = cli_exit_for_status(status);
    } else {
        if (status == RX_JOB_UNDETERMINED)
            cli_error("%s: no such job (UNDETERMINED): nothing to cancel", what);
        else
            cli_error("%s: the job is already %s: nothing changed", what,
                      rx_job_status_name(status));
        if (rc == CLI_EXIT_OK)
            rc = status == RX_JOB_FINISHED ? CLI_EXIT_FAILED : cli_exit_for_status(status);
    }

done:
    rx_job_free(job);
    return rc;
}
