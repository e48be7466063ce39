/*
 * cmd_wait.c - rxjob wait ID [--timeout SECONDS]: block until the job is over (rx_wait_for_job),
 * then print its final status and exit as it says (FINISHED 0, FAILED 1, CANCELED 4,
 * UNDETERMINED 5, explained on stderr as rxjob status does). A wait that times out prints the
 * status of the moment and exits 6.
 *
 * When stderr is a terminal a progress line, "job ID: DONE/TOTAL tasks done (STATUS)", is
 * redrawn there about once a second and erased at the end; elsewhere (a pipe, a log file) there
 * is no such line, so scripts see only the status.
 */
#include "cli.h"

#include <string.h>

static const char usage[] =
    "Usage: rxjob wait [--timeout SECONDS] [--json] ID\n"
    "\n"
    "Wait until job ID is over, then print its status: FINISHED, FAILED, CANCELED or\n"
    "UNDETERMINED. On a terminal, a progress line is shown on stderr meanwhile.\n"
    "\n"
    "Options:\n"
    "  --timeout SECONDS  give up after SECONDS (exit status 6); default: wait forever\n"
    "  --url URL          the daemon to ask (unix:/path or https://HOST:PORT)\n"
    "  --json             print the job as JSON (id, status, task counts)\n"
    "  -h, --help         this help\n";

enum { OPT_TIMEOUT = 1 };

static const cli_opt wait_opts[] = {
    {"timeout", 1, OPT_TIMEOUT},
    {NULL, 0, 0},
};

/* The longest wait --timeout accepts, in seconds (a year, as the library's time limits). */
#define WAIT_TIMEOUT_MAX_S RX_MAX_TIMEOUT_S

int
cmd_wait(cli *c, int argc, char **argv)
{
    cli_parser p;
    rx_job *job = NULL;
    rx_job_progress progress;
    rx_job_status status = RX_JOB_UNDETERMINED;
    const char *id_arg = NULL;
    const char *arg = NULL;
    double timeout_s = -1;
    char what[64];
    rx_err err;
    int rc;

    cli_parser_init(&p, argv[0], argc, argv, 0);
    for (;;) {
        int id = cli_next_opt(&p, c, wait_opts, &arg);

        if (id == CLI_OPT_END)
            break;
        if (id == CLI_OPT_HELP) {
            (void)fputs(usage, stdout);
            return CLI_EXIT_OK;
        }
        if (id == OPT_TIMEOUT) {
            if (cli_parse_seconds(p.cmd, "--timeout", arg, 0, WAIT_TIMEOUT_MAX_S, &timeout_s) != 0)
                return CLI_EXIT_USAGE;
            continue;
        }
        if (id != CLI_OPT_OPERAND)
            return CLI_EXIT_USAGE;
        if (id_arg != NULL)
            return cli_usage_error(p.cmd, "one job id only ('%s' is extra)", arg);
        id_arg = arg;
    }
    if (id_arg == NULL)
        return cli_usage_error(p.cmd, "no job id given");

    rc = cli_job_open(c, p.cmd, id_arg, &job);
    if (rc != CLI_EXIT_OK)
        return rc;
    (void)snprintf(what, sizeof(what), "wait %lld", (long long)rx_job_id(job));
    memset(&progress, 0, sizeof(progress));
    err = cli_wait_job(job, timeout_s, &status, &progress);
    if (err != RX_OK && err != RX_ETIMEDOUT) {
        rc = cli_fail(c, what, err);
        goto done;
    }
    if (c->json)
        rc = cli_json_print(cli_json_job(rx_job_id(job), status, &progress));
    else
        (void)printf("%s\n", rx_job_status_name(status));
    if (err == RX_ETIMEDOUT) {
        cli_error("%s: timed out after %g s; the job is %s", what, timeout_s,
                  rx_job_status_name(status));
        rc = CLI_EXIT_TIMEOUT;
    } else if (rc == CLI_EXIT_OK) {
        rc = cli_exit_for_status(status);
    }
    /* As rxjob status: stdout stays the status alone, stderr says why (not with --json). */
    if (err == RX_OK && status == RX_JOB_UNDETERMINED && !c->json)
        (void)cli_no_such_job(what);

done:
    rx_job_free(job);
    return rc;
}
