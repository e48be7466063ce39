/*
 * daemon_info.c - the daemon behind a server context, as the rxjob CLI's "daemon status" and
 * "daemon stop" need it: rx_daemon_get_info (GET /v1/daemon) and rx_daemon_stop
 * (POST /v1/daemon/stop, then waiting until the socket no longer answers).
 *
 * Neither ever starts a daemon, so they take a url (as rx_server_context does) rather than a
 * context: "is it running?" must not be answered by starting it. A daemon that does not answer
 * is an answer (running = 0, with the reason), not an error. What is odd (an HTTP error, an
 * answer outside the protocol) is logged at RX_LOG_ERROR and returned as RX_ECONTEXT.
 */
#include "client/daemon_start.h"
#include "client/http_client.h"
#include "core/internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

/* How long one request to the daemon may take, in milliseconds. */
#define DAEMON_REQUEST_TIMEOUT_MS 10000L

/* Pause between probes of the socket while waiting for a stopping daemon, in milliseconds. */
#define STOP_PROBE_INTERVAL_MS 20

/* A client for the daemon url names (rx__http_open); its failure is logged. */
static rx_err
open_url(const char *url, rx__http **out_http)
{
    char why[400] = "";
    rx_err err = rx__http_open(url, out_http, why, sizeof(why));

    if (err != RX_OK)
        rx__log(RX_LOG_ERROR, "daemon: %s", why);
    return err;
}

void
rx_daemon_info_free(rx_daemon_info *info)
{
    if (info == NULL)
        return;
    rx__free(info->socket);
    rx__free(info->why);
    rx__free(info->version);
    rx__free(info->executor);
    rx__free(info->state_dir);
    for (size_t i = 0; i < info->n_limits; i++) {
        rx__free(info->limits[i].name);
        rx__free(info->limits[i].unit);
    }
    rx__free(info->limits);
    rx__free(info);
}

/* A copy of the string at key of obj, or of fallback when there is none. NULL on ENOMEM. */
static char *
dup_field(const json_t *obj, const char *key, const char *fallback)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return rx__strdup(s != NULL ? s : fallback);
}

static size_t
size_field(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    return json_is_integer(v) && json_integer_value(v) > 0 ? (size_t)json_integer_value(v) : 0;
}

/* The "limits" object, {"argv_bytes": {"value": 1048576, "unit": "bytes"}, ...}; an entry not of
 * that shape is skipped (an older daemon has no "limits" at all). RX_OK; RX_ENOMEM. */
static rx_err
parse_limits(const json_t *limits, rx_daemon_info *info)
{
    const char *name;
    json_t *v;

    if (!json_is_object(limits) || json_object_size(limits) == 0)
        return RX_OK;
    info->limits = rx__calloc(json_object_size(limits), sizeof(*info->limits));
    if (info->limits == NULL)
        return RX_ENOMEM;
    json_object_foreach((json_t *)limits, name, v)
    {
        json_t *value = json_object_get(v, "value");
        rx_daemon_limit *l = &info->limits[info->n_limits];

        if (!json_is_integer(value) || json_integer_value(value) < 0)
            continue;
        l->name = rx__strdup(name);
        l->unit = dup_field(v, "unit", "");
        info->n_limits++; /* counted before the check, so free frees what was made */
        if (l->name == NULL || l->unit == NULL)
            return RX_ENOMEM;
        l->value = (uint64_t)json_integer_value(value);
    }
    return RX_OK;
}

/* Fill info from the GET /v1/daemon body. RX_OK; RX_ENOMEM. */
static rx_err
parse_info(const json_t *body, const char *sock, rx_daemon_info *info)
{
    const json_t *jobs = json_object_get(body, "jobs");
    json_t *v;

    info->running = 1;
    info->socket = dup_field(body, "socket", sock);
    info->why = rx__strdup("");
    info->version = dup_field(body, "version", "");
    info->executor = dup_field(body, "executor", "");
    info->state_dir = dup_field(body, "state_dir", "");
    if (info->socket == NULL || info->why == NULL || info->version == NULL ||
        info->executor == NULL || info->state_dir == NULL)
        return RX_ENOMEM;
    info->pid = (int64_t)size_field(body, "pid");
    info->slots = (unsigned)size_field(body, "slots");
    v = json_object_get(body, "started_s");
    info->started_s = json_is_number(v) ? json_number_value(v) : 0;
    for (int s = 0; s < RX_JOB_STATUS_COUNT; s++)
        info->jobs[s] = size_field(jobs, rx_job_status_name((rx_job_status)s));
    info->tasks_running = size_field(body, "tasks_running");
    info->hold = json_is_true(json_object_get(body, "hold"));
    return parse_limits(json_object_get(body, "limits"), info);
}

rx_err
rx_daemon_get_info(const char *url, rx_daemon_info **out_info)
{
    char why[400];
    const char *sock;
    rx__http *http = NULL;
    rx__http_reply reply = {0};
    rx_daemon_info *info = NULL;
    int conn_errno = 0;
    rx_err err;

    if (out_info == NULL)
        return RX_EINVAL;
    err = open_url(url, &http);
    if (err != RX_OK)
        return err;
    sock = rx__http_where(http);
    info = rx__calloc(1, sizeof(*info));
    if (info == NULL) {
        err = RX_ENOMEM;
        goto done;
    }
    err = rx__http_json(http, "GET", "/v1/daemon", NULL, DAEMON_REQUEST_TIMEOUT_MS, &reply,
                        &conn_errno, why, sizeof(why));
    if (err == RX_ECONTEXT && conn_errno != 0) {
        /* Nothing listens there: not running, which is the answer. */
        info->socket = rx__strdup(sock);
        info->why = rx__strdup(why);
        info->version = rx__strdup("");
        info->executor = rx__strdup("");
        info->state_dir = rx__strdup("");
        err = info->socket == NULL || info->why == NULL || info->version == NULL ||
                      info->executor == NULL || info->state_dir == NULL
                  ? RX_ENOMEM
                  : RX_OK;
        goto done;
    }
    if (err != RX_OK) {
        if (err == RX_ECONTEXT)
            rx__log(RX_LOG_ERROR, "daemon: %s", why);
        goto done;
    }
    if (reply.status != 200 || !json_is_object(reply.body)) {
        rx__log(RX_LOG_ERROR, "daemon: GET /v1/daemon at '%s' answered HTTP %ld%s%s", sock,
                reply.status, rx__http_reply_message(&reply)[0] != '\0' ? ": " : "",
                rx__http_reply_message(&reply));
        err = reply.status == 401 || reply.status == 403 ? RX_EPERM : RX_ECONTEXT;
        goto done;
    }
    err = parse_info(reply.body, sock, info);

done:
    rx__http_reply_clear(&reply);
    rx__http_free(http);
    if (err != RX_OK) {
        rx_daemon_info_free(info);
        return err;
    }
    *out_info = info;
    return RX_OK;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    (void)nanosleep(&ts, NULL);
}

/*
 * 1 while process pid has not exited. A zombie has exited (its parent may never reap it: a
 * daemonized rxjobd's parent is whatever reaper the system has). A process that is not rxjobd
 * (the pid came from a daemon in another pid namespace) is not waited for.
 */
static int
process_alive(int64_t pid)
{
    char path[64];
    char buf[512];
    FILE *f;
    size_t n;
    const char *paren;
    int alive = 1;

    if (pid <= 0 || pid > INT_MAX || (kill((pid_t)pid, 0) != 0 && errno == ESRCH))
        return 0;
    (void)snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return errno != ENOENT;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    (void)fclose(f);
    buf[n] = '\0';
    /* "pid (comm) S ...": the state follows the last ')', as comm may hold anything. */
    paren = strrchr(buf, ')');
    if (paren != NULL && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X'))
        alive = 0;
    if (strstr(buf, "(rxjobd") == NULL)
        alive = 0;
    return alive;
}

/* The pid a daemon gives in GET /v1/daemon, or 0. */
static int64_t
daemon_pid(rx__http *http)
{
    rx__http_reply reply = {0};
    char why[400];
    int64_t pid = 0;
    json_t *v;

    if (rx__http_json(http, "GET", "/v1/daemon", NULL, DAEMON_REQUEST_TIMEOUT_MS, &reply, NULL, why,
                      sizeof(why)) == RX_OK &&
        reply.status == 200) {
        v = json_object_get(reply.body, "pid");
        if (json_is_integer(v) && json_integer_value(v) > 0)
            pid = (int64_t)json_integer_value(v);
    }
    rx__http_reply_clear(&reply);
    return pid;
}

/* 1 while something accepts connections at the https url (a new connection each time: a kept
 * one would outlive the listener). */
static int
tcp_answers(const char *url)
{
    rx__http *http = NULL;
    rx__http_reply reply = {0};
    char why[400];
    int conn_errno = 0;
    rx_err err;

    if (rx__http_open(url, &http, why, sizeof(why)) != RX_OK)
        return 0;
    err = rx__http_json(http, "GET", "/v1/daemon", NULL, DAEMON_REQUEST_TIMEOUT_MS, &reply,
                        &conn_errno, why, sizeof(why));
    rx__http_reply_clear(&reply);
    rx__http_free(http);
    return !(err == RX_ECONTEXT && conn_errno != 0);
}

rx_err
rx_daemon_stop(const char *url, double timeout_s, int *out_was_running)
{
    char sock[PATH_MAX];
    char why[400];
    rx__http *http = NULL;
    rx__http_reply reply = {0};
    int conn_errno = 0;
    int is_tcp;
    int64_t deadline;
    int64_t pid = 0;
    rx_err err;

    if (isnan(timeout_s))
        return RX_EINVAL;
    err = open_url(url, &http);
    if (err != RX_OK)
        return err;
    is_tcp = rx__http_socket(http) == NULL;
    (void)snprintf(sock, sizeof(sock), "%s", rx__http_where(http));
    /* The socket stops answering before the process has exited and released its lock: a daemon
     * started in between would be refused. So wait for the process too (on this host: a daemon
     * behind a URL may run elsewhere, where its pid means nothing here). */
    if (!is_tcp)
        pid = daemon_pid(http);
    err = rx__http_json(http, "POST", "/v1/daemon/stop", NULL, DAEMON_REQUEST_TIMEOUT_MS, &reply,
                        &conn_errno, why, sizeof(why));
    rx__http_free(http); /* drop the connection before watching the socket */
    http = NULL;
    if (err == RX_ECONTEXT && conn_errno != 0) {
        if (out_was_running != NULL)
            *out_was_running = 0; /* nothing answers: nothing to stop */
        return RX_OK;
    }
    if (err != RX_OK) {
        if (err == RX_ECONTEXT)
            rx__log(RX_LOG_ERROR, "daemon: %s", why);
        rx__http_reply_clear(&reply);
        return err;
    }
    if (reply.status != 200) {
        rx__log(RX_LOG_ERROR, "daemon: stop at '%s' refused: HTTP %ld%s%s", sock, reply.status,
                rx__http_reply_message(&reply)[0] != '\0' ? ": " : "",
                rx__http_reply_message(&reply));
        err = reply.status == 401 || reply.status == 403 ? RX_EPERM : RX_ECONTEXT;
        rx__http_reply_clear(&reply);
        return err;
    }
    rx__http_reply_clear(&reply);

    /* Beyond a year is forever (and keeps the conversion to milliseconds in range). */
    deadline = timeout_s < 0 || timeout_s > RX_MAX_TIMEOUT_S
                   ? INT64_MAX
                   : rx__now_ms() + (int64_t)(timeout_s * 1000.0);
    while ((is_tcp ? tcp_answers(url) : rx__daemon_answers(sock, NULL)) || process_alive(pid)) {
        if (rx__now_ms() >= deadline)
            return RX_ETIMEDOUT;
        sleep_ms(STOP_PROBE_INTERVAL_MS);
    }
    if (out_was_running != NULL)
        *out_was_running = 1;
    return RX_OK;
}
