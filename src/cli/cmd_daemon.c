/*
 * cmd_daemon.c - rxjob daemon start|stop|status: the per-user rxjobd.
 *
 * start: make sure it runs. Any request on the default server context starts the daemon when
 * nothing answers (DESIGN.md section 4, "Embedded default"); an empty listing is the cheapest
 * such request. With --url the library never starts a daemon, so start only checks that one
 * answers there.
 * stop: ask it to stop (rx_daemon_stop) and wait until it no longer answers; its running tasks
 * go on and are adopted at its next start. Never starts one; no daemon to stop is not an error.
 * status: what it says about itself (rx_daemon_get_info): version, pid, socket, state
 * directory, slots, executor, job counts. Never starts one: a daemon that does not answer exits 3.
 */
#include "cli.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "Usage: rxjob daemon start|stop|status [--json]\n"
    "\n"
    "  start    make sure the per-user daemon runs (start it if nothing answers)\n"
    "  stop     stop the daemon; its running tasks go on and are adopted at its next start\n"
    "  status   print the daemon's version, pid, socket, state directory, slots,\n"
    "           executor, job counts and limits (exit status 3 if it does not\n"
    "           answer)\n"
    "\n"
    "Options:\n"
    "  --url URL          the daemon at this socket or URL (never started by rxjob)\n"
    "  --json             print the daemon's status as JSON\n"
    "  -h, --help         this help\n";

/* How long stop waits for the daemon to be gone, in seconds. */
#define STOP_WAIT_S 30.0

static json_t *
info_json(const rx_daemon_info *info)
{
    json_t *obj = json_object();
    json_t *jobs = json_object();
    int bad = obj == NULL || jobs == NULL;

    bad = bad || json_object_set_new(obj, "version", cli_json_string(info->version)) != 0;
    bad = bad || json_object_set_new(obj, "pid", json_integer((json_int_t)info->pid)) != 0;
    bad = bad || json_object_set_new(obj, "executor", cli_json_string(info->executor)) != 0;
    bad = bad || json_object_set_new(obj, "slots", json_integer((json_int_t)info->slots)) != 0;
    bad = bad || json_object_set_new(obj, "socket", cli_json_string(info->socket)) != 0;
    bad = bad || json_object_set_new(obj, "state_dir", cli_json_string(info->state_dir)) != 0;
    bad = bad || json_object_set_new(obj, "started_s", json_real(info->started_s)) != 0;
    for (int s = 0; s < RX_JOB_UNDETERMINED && !bad; s++) {
        bad = json_object_set_new(jobs, rx_job_status_name((rx_job_status)s),
                                  json_integer((json_int_t)info->jobs[s])) != 0;
    }
    bad = bad || json_object_set(obj, "jobs", jobs) != 0;
    bad = bad ||
          json_object_set_new(obj, "tasks_running", json_integer((json_int_t)info->tasks_running));
    bad = bad || json_object_set_new(obj, "hold", json_boolean(info->hold)) != 0;
    {
        json_t *limits = json_object();

        for (size_t i = 0; limits != NULL && i < info->n_limits; i++)
            if (json_object_set_new(limits, info->limits[i].name,
                                    json_pack("{s:I, s:s}", "value",
                                              (json_int_t)info->limits[i].value, "unit",
                                              info->limits[i].unit)) != 0) {
                json_decref(limits);
                limits = NULL;
            }
        if (limits == NULL || json_object_set_new(obj, "limits", limits) != 0)
            bad = 1;
    }
    json_decref(jobs);
    if (bad) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static int
print_info(cli *c, const rx_daemon_info *info)
{
    char started[64];
    time_t t = (time_t)info->started_s;
    struct tm tm;

    if (c->json)
        return cli_json_print(info_json(info));
    if (info->started_s <= 0 || localtime_r(&t, &tm) == NULL ||
        strftime(started, sizeof(started), "%Y-%m-%d %H:%M:%S", &tm) == 0)
        (void)snprintf(started, sizeof(started), "-");
    (void)printf("version:        %s\n", info->version);
    (void)printf("pid:            %lld\n", (long long)info->pid);
    (void)printf("socket:         %s\n", info->socket);
    (void)printf("state dir:      %s\n", info->state_dir);
    (void)printf("slots:          %u\n", info->slots);
    (void)printf("executor:       %s\n", info->executor);
    (void)printf("started:        %s\n", started);
    (void)printf("tasks running:  %zu\n", info->tasks_running);
    (void)printf("jobs:          ");
    for (int s = 0; s < RX_JOB_UNDETERMINED; s++)
        (void)printf(" %s %zu", rx_job_status_name((rx_job_status)s), info->jobs[s]);
    (void)printf("\n");
    if (info->hold)
        (void)printf("hold:           on (jobs are accepted, no task starts)\n");
    if (info->n_limits > 0)
        (void)printf("limits:\n");
    for (size_t i = 0; i < info->n_limits; i++)
        (void)printf("  %-22s %" PRIu64 " %s%s\n", info->limits[i].name, info->limits[i].value,
                     info->limits[i].unit,
                     info->limits[i].value == 0 && strcmp(info->limits[i].name, "output_bytes") == 0
                         ? " (no cap)"
                         : "");
    return CLI_EXIT_OK;
}

static int
daemon_status(cli *c)
{
    rx_daemon_info *info = NULL;
    const char *url = cli_url(c);
    char why[CLI_CAPTURE_MAX];
    rx_err err;
    int rc;

    cli_capture_begin(c, why); /* the library's reason, said once by cli_open_failed */
    err = rx_daemon_get_info(url, &info);
    cli_capture_end(c);
    if (err != RX_OK)
        return cli_open_failed(c, "daemon status", err, why);
    if (!info->running) {
        if (c->json) {
            json_t *obj = json_pack("{s:b, s:s, s:s}", "running", 0, "socket", info->socket, "why",
                                    info->why);

            (void)cli_json_print(obj);
        }
        cli_error("daemon status: not running: %s", info->why);
        rx_daemon_info_free(info);
        return CLI_EXIT_UNREACHABLE;
    }
    rc = print_info(c, info);
    rx_daemon_info_free(info);
    return rc;
}

static int
daemon_start(cli *c)
{
    rx_job_filter none;
    rx_context *ctx = NULL;
    rx_job **jobs = NULL;
    size_t n = 0;
    rx_err err;
    int rc;

    rc = cli_context(c, "daemon start", &ctx);
    if (rc != CLI_EXIT_OK)
        return rc;
    /* A listing that matches nothing: cheap, and it starts the daemon if it must. */
    memset(&none, 0, sizeof(none));
    none.since_s = 253402300799.0; /* the year 9999 */
    err = rx_get_jobs(ctx, &none, &jobs, &n);
    if (err != RX_OK)
        return cli_fail(c, "daemon start", err);
    rx_jobs_free(jobs, n);
    if (c->json)
        return daemon_status(c);
    return CLI_EXIT_OK;
}

static int
daemon_stop(cli *c)
{
    int was_running = 0;
    const char *url = cli_url(c);
    char why[CLI_CAPTURE_MAX];
    rx_err err;

    cli_capture_begin(c, why); /* the library's reason, said once by cli_open_failed */
    err = rx_daemon_stop(url, STOP_WAIT_S, &was_running);
    cli_capture_end(c);
    if (err == RX_ETIMEDOUT) {
        cli_error("daemon stop: the daemon still runs after %g s", STOP_WAIT_S);
        return CLI_EXIT_TIMEOUT;
    }
    if (err != RX_OK)
        return cli_open_failed(c, "daemon stop", err, why);
    if (!was_running)
        cli_error("daemon stop: no daemon was running");
    if (c->json)
        return cli_json_print(json_pack("{s:b}", "was_running", was_running));
    return CLI_EXIT_OK;
}

int
cmd_daemon(cli *c, int argc, char **argv)
{
    cli_parser p;
    const char *action = NULL;
    const char *arg = NULL;

    cli_parser_init(&p, argv[0], argc, argv, 0);
    for (;;) {
        int id = cli_next_opt(&p, c, NULL, &arg);

        if (id == CLI_OPT_END)
            break;
        if (id == CLI_OPT_HELP) {
            (void)fputs(usage, stdout);
            return CLI_EXIT_OK;
        }
        if (id != CLI_OPT_OPERAND)
            return CLI_EXIT_USAGE;
        if (action != NULL)
            return cli_usage_error(p.cmd, "unexpected argument '%s'", arg);
        action = arg;
    }
    if (action == NULL)
        return cli_usage_error(p.cmd, "start, stop or status?");
    if (strcmp(action, "start") != 0 && strcmp(action, "stop") != 0 &&
        strcmp(action, "status") != 0)
        return cli_usage_error(p.cmd, "'%s' is not start, stop or status", action);

    if (strcmp(action, "start") == 0)
        return daemon_start(c);
    if (strcmp(action, "stop") == 0)
        return daemon_stop(c);
    return daemon_status(c);
}
