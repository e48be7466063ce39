/*
 * cmd_jobs.c - rxjob jobs [--state S[,S...]] [--since T] [--until T]: the caller's jobs whose
 * artifacts still exist, oldest first (rx_get_jobs), as a table:
 *
 *     ID  STATUS    TASKS  CREATED
 *     17  FINISHED  20/20  2026-11-30 00:17:06
 *
 * TASKS is done/total (done = ended, well or not). CREATED is local time. With --json, one
 * object {"jobs": [job, ...]}. The listing gives ids; each job's status and counts are asked for
 * once more (a job that went away meanwhile is left out).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "Usage: rxjob jobs [--state S[,S...]] [--since UNIX_SECONDS] [--until UNIX_SECONDS]\n"
    "                  [--json]\n"
    "\n"
    "List your jobs whose artifacts still exist, oldest first: ID, STATUS,\n"
    "TASKS (done/total) and CREATED.\n"
    "\n"
    "Options:\n"
    "  --state S[,S...]        only jobs in these states (QUEUED, RUNNING, FINISHED,\n"
    "                          FAILED, CANCELED; any case)\n"
    "  --since UNIX_SECONDS    only jobs created at or after this time (date +%s)\n"
    "  --until UNIX_SECONDS    only jobs created at or before this time\n"
    "  --url URL               the daemon to ask (unix:/path or https://HOST:PORT)\n"
    "  --json                  print {\"jobs\": [...]}\n"
    "  -h, --help              this help\n";

enum { OPT_STATE = 1, OPT_SINCE, OPT_UNTIL };

static const cli_opt jobs_opts[] = {
    {"state", 1, OPT_STATE},
    {"since", 1, OPT_SINCE},
    {"until", 1, OPT_UNTIL},
    {NULL, 0, 0},
};

/* The latest time --since and --until take: the year 9999, in UNIX seconds. */
#define TIME_MAX_S 253402300799.0

/* Parse "S[,S...]" into status bits. Returns 0, or an exit status after printing. */
static int
parse_states(const char *cmd, const char *list, unsigned *out_states)
{
    unsigned states = 0;
    const char *s = list;

    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma != NULL ? (size_t)(comma - s) : strlen(s);
        char name[32];
        rx_job_status status;

        if (len == 0 || len >= sizeof(name))
            goto bad;
        memcpy(name, s, len);
        name[len] = '\0';
        if (rx_job_status_parse(name, &status) != RX_OK)
            goto bad;
        states |= 1u << (unsigned)status;
        if (comma == NULL)
            break;
        s = comma + 1;
        continue;
    bad:
        return cli_usage_error(cmd,
                               "--state: '%.*s' is not a status (QUEUED, RUNNING, FINISHED, "
                               "FAILED, CANCELED)",
                               (int)len, s);
    }
    *out_states = states;
    return CLI_EXIT_OK;
}

static void
format_time(double unix_s, char *buf, size_t len)
{
    time_t t = (time_t)unix_s;
    struct tm tm;

    if (unix_s <= 0 || localtime_r(&t, &tm) == NULL ||
        strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        (void)snprintf(buf, len, "-");
}

/* One row of the table. */
typedef struct row {
    int64_t id;
    rx_job_status status;
    rx_job_progress progress;
} row;

static int
print_table(const row *rows, size_t n)
{
    int w_id = 2;
    int w_tasks = 5;
    char cell[64];

    for (size_t i = 0; i < n; i++) {
        int w = snprintf(cell, sizeof(cell), "%lld", (long long)rows[i].id);

        if (w > w_id)
            w_id = w;
        w = snprintf(cell, sizeof(cell), "%zu/%zu", rows[i].progress.ok + rows[i].progress.failed,
                     rows[i].progress.n_tasks);
        if (w > w_tasks)
            w_tasks = w;
    }
    (void)printf("%-*s  %-12s  %-*s  %s\n", w_id, "ID", "STATUS", w_tasks, "TASKS", "CREATED");
    for (size_t i = 0; i < n; i++) {
        char created[64];

        (void)snprintf(cell, sizeof(cell), "%zu/%zu", rows[i].progress.ok + rows[i].progress.failed,
                       rows[i].progress.n_tasks);
        format_time(rows[i].progress.created_s, created, sizeof(created));
        (void)printf("%-*lld  %-12s  %-*s  %s\n", w_id, (long long)rows[i].id,
                     rx_job_status_name(rows[i].status), w_tasks, cell, created);
    }
    return CLI_EXIT_OK;
}

static int
print_json(const row *rows, size_t n)
{
    json_t *list = json_array();
    json_t *obj = json_object();

    if (list == NULL || obj == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(list,
                                  cli_json_job(rows[i].id, rows[i].status, &rows[i].progress)) != 0)
            goto fail;
    }
    if (json_object_set(obj, "jobs", list) != 0)
        goto fail;
    json_decref(list);
    return cli_json_print(obj);

fail:
    json_decref(list);
    json_decref(obj);
    return cli_json_print(NULL);
}

int
cmd_jobs(cli *c, int argc, char **argv)
{
    rx_job_filter filter;
    cli_parser p;
    rx_context *ctx = NULL;
    rx_job **jobs = NULL;
    row *rows = NULL;
    const char *arg = NULL;
    size_t n = 0;
    size_t n_rows = 0;
    int rc = CLI_EXIT_OK;
    rx_err err;

    memset(&filter, 0, sizeof(filter));
    cli_parser_init(&p, argv[0], argc, argv, 0);
    for (;;) {
        int id = cli_next_opt(&p, c, jobs_opts, &arg);

        if (id == CLI_OPT_END)
            break;
        switch (id) {
        case CLI_OPT_HELP:
            (void)fputs(usage, stdout);
            return CLI_EXIT_OK;
        case OPT_STATE:
            rc = parse_states(p.cmd, arg, &filter.states);
            if (rc != CLI_EXIT_OK)
                return rc;
            break;
        case OPT_SINCE:
            if (cli_parse_seconds(p.cmd, "--since", arg, 0, TIME_MAX_S, &filter.since_s) != 0)
                return CLI_EXIT_USAGE;
            break;
        case OPT_UNTIL:
            if (cli_parse_seconds(p.cmd, "--until", arg, 0, TIME_MAX_S, &filter.until_s) != 0)
                return CLI_EXIT_USAGE;
            break;
        case CLI_OPT_OPERAND:
            return cli_usage_error(p.cmd, "unexpected argument '%s'", arg);
        default:
            return CLI_EXIT_USAGE;
        }
    }

    rc = cli_context(c, p.cmd, &ctx);
    if (rc != CLI_EXIT_OK)
        return rc;
    err = rx_get_jobs(ctx, &filter, &jobs, &n);
    if (err != RX_OK)
        return cli_fail(c, p.cmd, err);
    rows = calloc(n > 0 ? n : 1, sizeof(*rows));
    if (rows == NULL) {
        rc = cli_fail(c, p.cmd, RX_ENOMEM);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        row *r = &rows[n_rows];

        err = rx_job_get_progress(jobs[i], &r->status, &r->progress);
        if (err == RX_ENOENT)
            continue; /* removed since the listing */
        if (err != RX_OK) {
            rc = cli_fail(c, p.cmd, err);
            goto done;
        }
        r->id = rx_job_id(jobs[i]);
        n_rows++;
    }
    rc = c->json ? print_json(rows, n_rows) : print_table(rows, n_rows);

done:
    free(rows);
    rx_jobs_free(jobs, n);
    return rc;
}
