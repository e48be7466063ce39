/*
 * cmd_status.c - rxjob status ID: print the job's status name alone (QUEUED, RUNNING, FINISHED,
 * FAILED, CANCELED, UNDETERMINED), as rx_get_job_status gives it, and exit as the status says
 * (FAILED 1, CANCELED 4, UNDETERMINED 5, else 0). An UNDETERMINED job is also explained on stderr
 * (no such job: collected, cleaned up, or never submitted), except with --json.
 *
 * It asks through rx_job_get_progress rather than rx_get_job_status: both read UNDETERMINED for
 * a job that is gone, but only the former tells an unknown job (exit 5) from a daemon that does
 * not answer (exit 3).
 */
#include "cli.h"

#include <string.h>

static const char usage[] =
    "Usage: rxjob status [--json] ID\n"
    "\n"
    "Print the status of job ID: QUEUED, RUNNING, FINISHED, FAILED,\n"
    "CANCELED or UNDETERMINED (unknown, or cleaned up: exit status 5, and a line\n"
    "on stderr says so).\n"
    "\n"
    "Options:\n"
    "  --url URL          the daemon to ask (unix:/path or https://HOST:PORT)\n"
    "  --json             print the job as JSON (id, status, task counts)\n"
    "  -h, --help         this help\n";

int
cmd_status(cli *c, int argc, char **argv)
{
    cli_parser p;
    rx_job *job = NULL;
    rx_job_progress progress;
    rx_job_status status = RX_JOB_UNDETERMINED;
    const char *id_arg = NULL;
    char what[64];
    rx_err err;
    int rc;

    rc = cli_parse_one_id(c, &p, argc, argv, usage, &id_arg);
    if (rc != CLI_EXIT_OK || id_arg == NULL)
        return rc;

    rc = cli_job_open(c, p.cmd, id_arg, &job);
    if (rc != CLI_EXIT_OK)
        return rc;
    (void)snprintf(what, sizeof(what), "status %lld", (long long)rx_job_id(job));
    memset(&progress, 0, sizeof(progress));
    err = cli_job_poll(job, &status, &progress);
    if (err != RX_OK) {
        rc = cli_fail(c, what, err);
    } else {
        if (c->json)
            rc = cli_json_print(cli_json_job(rx_job_id(job), status, &progress));
        else
            (void)printf("%s\n", rx_job_status_name(status));
        if (rc == CLI_EXIT_OK)
            rc = cli_exit_for_status(status);
        /* stdout stays the status alone (scripts read it); stderr says why. With --json the
         * document is the whole answer. */
        if (status == RX_JOB_UNDETERMINED && !c->json)
            (void)cli_no_such_job(what);
    }
    rx_job_free(job);
    return rc;
}
