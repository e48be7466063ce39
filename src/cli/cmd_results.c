/*
 * cmd_results.c - rxjob results ID [--keep]: collect the job's results (rx_get_job_results) and
 * print each task's value in task order, raw, one per line; failed tasks are named on stderr as
 * "task N: ERROR: message". Never waits: a job not over yet exits 7 at once, and nothing is
 * deleted. Collecting removes the job (it then reads UNDETERMINED), unless --keep is given or the
 * job was submitted with --no-auto-cleanup.
 */
#include "cli.h"

static const char usage[] =
    "Usage: rxjob results [--keep] [--json] ID\n"
    "\n"
    "Print the results of job ID: each task's value in task order, one per line\n"
    "(a newline is added unless the value ends with one). Failed tasks are reported on\n"
    "stderr as \"task N: ERROR: message\", and the exit status is then 1. Unless --keep is\n"
    "given (or the job was submitted with --no-auto-cleanup), the job is removed.\n"
    "\n"
    "Options:\n"
    "  --keep             keep the job and its results (no auto-cleanup)\n"
    "  --url URL          the daemon to ask (unix:/path or https://HOST:PORT)\n"
    "  --json             print {\"job\": ..., \"slots\": [...]} with base64 values\n"
    "  -h, --help         this help\n";

enum { OPT_KEEP = 1 };

static const cli_opt results_opts[] = {
    {"keep", 0, OPT_KEEP},
    {NULL, 0, 0},
};

int
cmd_results(cli *c, int argc, char **argv)
{
    cli_parser p;
    rx_job *job = NULL;
    const char *id_arg = NULL;
    const char *arg = NULL;
    int keep = 0;
    char what[64];
    int rc;

    cli_parser_init(&p, argv[0], argc, argv, 0);
    for (;;) {
        int id = cli_next_opt(&p, c, results_opts, &arg);

        if (id == CLI_OPT_END)
            break;
        if (id == CLI_OPT_HELP) {
            (void)fputs(usage, stdout);
            return CLI_EXIT_OK;
        }
        if (id == OPT_KEEP) {
            keep = 1;
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
    (void)snprintf(what, sizeof(what), "results %lld", (long long)rx_job_id(job));
    rc = cli_print_results(c, what, job, keep);
    rx_job_free(job);
    return rc;
}
