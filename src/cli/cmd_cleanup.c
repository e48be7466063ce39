/*
 * cmd_cleanup.c - rxjob cleanup ID... [--force]: remove jobs and their artifacts
 * (rx_cleanup_jobs). FAILED and CANCELED jobs go; a FINISHED job (collected or not: cleaning it
 * up deletes its results) stays unless --force; a QUEUED or RUNNING job stays unless --force, which
 * cancels it first; unknown ids are a silent no-op. Kept jobs are named by the library's warnings
 * ("cleanup: job N kept: job N is STATUS: ..."), which advise the C API's force and
 * rx_get_job_results: each is said again as "rxjob: warning: cleanup: job N kept: ...", naming
 * rxjob results and cleanup --force with the job's id. A warning of another shape is printed as
 * it is, then a last warning says how to collect or force the jobs away. Keeping a job is not an
 * error: the exit status is 0.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: rxjob cleanup [--force] [--json] ID...\n"
    "\n"
    "Remove jobs and their artifacts (results, output, record). FAILED and CANCELED jobs\n"
    "are removed. A FINISHED job (whose results cleaning up would delete), and a QUEUED or\n"
    "RUNNING job, are kept with a warning unless --force is given (a live job is then\n"
    "canceled first). Unknown ids are ignored.\n"
    "\n"
    "Options:\n"
    "  --force            remove FINISHED jobs too; cancel and remove live ones\n"
    "  --url URL          the daemon to ask (unix:/path or https://HOST:PORT)\n"
    "  --json             print {\"requested\": N, \"cleaned\": M}\n"
    "  -h, --help         this help\n";

enum { OPT_FORCE = 1 };

/* A warning of the library's that kept_warning could not say in the CLI's words. */
static int unexplained_warning;

/* The library's "cleanup: job N kept: job N is STATUS: ..." in the CLI's words (cli.on_warning). */
static int
kept_warning(cli *c, const char *msg)
{
    char status[16] = "";
    long long id = 0;
    long long id2 = 0;
    int end = 0;

    (void)c;
    if (sscanf(msg, "cleanup: job %lld kept: job %lld is %15[A-Z]:%n", &id, &id2, status, &end) !=
            3 ||
        end == 0 || id != id2) {
        unexplained_warning = 1;
        return 0;
    }
    if (strcmp(status, "FINISHED") == 0) {
        cli_error("warning: cleanup: job %lld kept: it is FINISHED, and cleaning it up would "
                  "delete its results: 'rxjob results %lld' collects them, 'rxjob cleanup "
                  "--force %lld' deletes them",
                  id, id, id);
    } else if (strcmp(status, "QUEUED") == 0 || strcmp(status, "RUNNING") == 0) {
        cli_error("warning: cleanup: job %lld kept: it is %s: 'rxjob cleanup --force %lld' "
                  "cancels and removes it",
                  id, status, id);
    } else {
        unexplained_warning = 1;
        return 0;
    }
    return 1;
}

static const cli_opt cleanup_opts[] = {
    {"force", 0, OPT_FORCE},
    {NULL, 0, 0},
};

int
cmd_cleanup(cli *c, int argc, char **argv)
{
    cli_parser p;
    rx_job **jobs = NULL;
    const char **ids = NULL;
    const char *arg = NULL;
    size_t n = 0;
    size_t n_open = 0;
    size_t cleaned = 0;
    int force = 0;
    int rc = CLI_EXIT_OK;
    rx_err err;

    /* At most one id per argument: size the arrays once. */
    ids = calloc((size_t)argc, sizeof(*ids));
    jobs = calloc((size_t)argc, sizeof(*jobs));
    if (ids == NULL || jobs == NULL) {
        cli_error("%s: %s", argv[0], rx_strerror(RX_ENOMEM));
        rc = CLI_EXIT_ERROR;
        goto done;
    }
    cli_parser_init(&p, argv[0], argc, argv, 0);
    for (;;) {
        int id = cli_next_opt(&p, c, cleanup_opts, &arg);

        if (id == CLI_OPT_END)
            break;
        if (id == CLI_OPT_HELP) {
            (void)fputs(usage, stdout);
            goto done;
        }
        if (id == OPT_FORCE) {
            force = 1;
        } else if (id == CLI_OPT_OPERAND) {
            ids[n++] = arg;
        } else {
            rc = CLI_EXIT_USAGE;
            goto done;
        }
    }
    if (n == 0) {
        rc = cli_usage_error(p.cmd, "no job id given");
        goto done;
    }
    /* Every id is checked before anything is removed. */
    for (size_t i = 0; i < n; i++) {
        rc = cli_job_open(c, p.cmd, ids[i], &jobs[i]);
        if (rc != CLI_EXIT_OK)
            goto done;
        n_open++;
    }

    c->warned = 0;
    unexplained_warning = 0;
    c->on_warning = kept_warning;
    err = rx_cleanup_jobs(jobs, n, force, &cleaned);
    c->on_warning = NULL;
    if (err != RX_OK) {
        rc = cli_fail(c, p.cmd, err);
        goto done;
    }
    if (unexplained_warning && !force) {
        cli_error("warning: jobs kept: 'rxjob results ID' collects a finished job's results; "
                  "'rxjob cleanup --force ID' removes any job");
    }
    if (c->json) {
        json_t *obj = json_object();

        if (obj != NULL &&
            (json_object_set_new(obj, "requested", json_integer((json_int_t)n)) != 0 ||
             json_object_set_new(obj, "cleaned", json_integer((json_int_t)cleaned)) != 0)) {
            json_decref(obj);
            obj = NULL;
        }
        rc = cli_json_print(obj);
    }

done:
    for (size_t i = 0; i < n_open; i++)
        rx_job_free(jobs[i]);
    free(jobs);
    free(ids);
    return rc;
}
