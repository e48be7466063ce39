/*
 * http.c - rxjobd's routes (docs/protocol.md) on libmicrohttpd.
 *
 * Threading: one thread per connection (MHD_USE_THREAD_PER_CONNECTION), because a long poll
 * (wait) or a followed output blocks its thread; every engine call is thread-safe. Shutdown must
 * not wait for those, so they poll in slices of HTTP_POLL_SLICE_MS and give up when the server
 * is stopping.
 *
 * Who calls: on the Unix socket, the peer's uid, asked once per connection (SO_PEERCRED, when
 * libmicrohttpd reports the connection started) and kept in the connection's socket context. On
 * the TCP listener (rxjobd --listen, TLS with GnuTLS through libmicrohttpd), each request names
 * its user with a bearer token (auth.h); a request without a known token is answered 401 from its
 * first call, before a byte of its body is read or kept, so an unauthenticated client costs a
 * TLS handshake and its headers, nothing more.
 *
 * A request goes through the access handler several times: once with the headers (we note the
 * caller's uid, or answer 401, and refuse an announced body over the limit at once, with 413,
 * before reading it), once per piece of body (accumulated, up to the body_bytes limit; a chunked
 * body that grows past it is refused the same way), and once at the end, when the route runs.
 *
 * A body over HTTP_LARGE_BODY_BYTES (announced, or grown to it) costs many times its size while
 * it is read and parsed, so at most HTTP_MAX_LARGE_BODIES are read and handled at once: the
 * others wait for their turn, and get 503 after HTTP_LARGE_BODY_WAIT_MS.
 *
 * Responses are JSON built with jansson, except output and results, which are streamed with
 * MHD_create_response_from_callback: output copies the spool's per-task files in 64 KiB reads,
 * results read each value from its file and base64-encode it into the send buffer
 * (api_jobs_results_writer), so neither is ever whole in memory here. Spool files are opened
 * with spool_open_read: what a task put in their place (a FIFO) never blocks a request. A
 * collection with auto-cleanup deletes the job only once its body was sent whole.
 *
 * Paths and query values are percent-decoded by unescape_no_nul, which leaves "%00" encoded: a
 * NUL never cuts a path or value short.
 */
#define _GNU_SOURCE /* struct ucred, SO_PEERCRED */

#include "server/http.h"

#include "core/internal.h"
#include "server/api_jobs.h"
#include "server/auth.h"
#include "store/spool.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HTTP_POLL_SLICE_MS            500                 /* longest a long poll sleeps unchecked */
#define HTTP_FOLLOW_POLL_MS           200                 /* followed output: wait between looks */
#define HTTP_STREAM_BLOCK_BYTES       ((size_t)64 * 1024) /* output and results: one send buffer */
#define HTTP_MAX_QUERY_ARGS           16                  /* query parameters per request */
#define HTTP_MAX_CONNECTIONS          1024u               /* open connections at once */
#define HTTP_CONNECTION_TIMEOUT_S     300u                /* idle connection closed after */
#define HTTP_TCP_UNAUTH_TIMEOUT_S     10u  /* TCP: idle, no known token sent yet: closed after */
#define HTTP_BACKLOG                  128  /* listen(2) backlog */
#define HTTP_WHY_LEN                  512  /* reasons in error bodies, bytes */
#define HTTP_DRAIN_MS                 3000 /* stop: longest wait for requests */
#define HTTP_LARGE_BODY_BYTES         ((size_t)1024 * 1024) /* a body above this is "large" */
#define HTTP_MAX_LARGE_BODIES         2u                    /* large bodies read/parsed at once */
#define HTTP_LARGE_BODY_WAIT_MS       30000                 /* longest wait for a turn, then 503 */
#define HTTP_TCP_PER_IP_CONNECTIONS   64u  /* TCP: open connections from one address at once */
#define HTTP_UNIX_PER_UID_CONNECTIONS 64u  /* Unix socket: open connections of one other user */
#define HTTP_UNAUTH_LOG_MS            1000 /* TCP: at most one "401" log line per this period */
#define HTTP_TLS_PRIORITIES           "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2" /* GnuTLS */

/* The closure of each listener's callbacks: which server, and whether it is the TCP one (set
 * before the listener starts, never changed: a request knows its side without a race). */
typedef struct http_side {
    http_server *s;
    int is_tcp; /* 1: every request must carry a known token */
} http_side;

struct http_server {
    http_side unix_side; /* the callbacks' closure on the Unix socket */
    http_side tcp_side;  /* and on the TCP listener */
    struct MHD_Daemon *mhd;
    struct MHD_Daemon *mhd_tcp;              /* the TCP listener, or NULL */
    auth_tokens *tokens;                     /* TCP callers' tokens; NULL without TCP */
    char *tcp_url;                           /* "https://127.0.0.1:8443", or NULL without TCP */
    char *tls_cert;                          /* PEM, kept while MHD may read it */
    char *tls_key;                           /* PEM, wiped at stop */
    atomic_uint_fast64_t unauthorized_total; /* TCP requests answered 401 */
    atomic_int_fast64_t unauth_logged_ms;    /* when the last 401 was logged (rx__now_ms) */
    engine *engine;
    char *socket_path;
    char *state_dir;
    double started_s;
    uid_t uid; /* the daemon's own uid: may stop it */
    http_stop_fn *on_stop;
    void *stop_user;
    atomic_int stopping;
    atomic_int quiesced;
    atomic_uint_fast64_t requests_total;
    atomic_int active; /* requests between their first call and their completion */
    /* Large bodies (over HTTP_LARGE_BODY_BYTES) cost many times their size while read and
     * parsed: at most HTTP_MAX_LARGE_BODIES at once, the others wait for a turn. */
    pthread_mutex_t large_mu;
    pthread_cond_t large_cond; /* CLOCK_MONOTONIC */
    unsigned large_reading;    /* turns taken */
    unsigned large_waiting;    /* requests waiting for one */
    /* Open Unix-socket connections per uid, for the uids other than root and the daemon's own
     * (system mode: one user must not take all HTTP_MAX_CONNECTIONS and lock the others out). */
    pthread_mutex_t conn_mu;
    struct http_uid_conns {
        uid_t uid;
        unsigned n;
    } * uid_conns;
    size_t n_uid_conns;
};

typedef struct results_stream results_stream;

/* One request, from its headers to its completion. */
typedef struct http_request {
    uid_t uid;               /* the caller: the peer's uid (SO_PEERCRED), or the token's user */
    int have_uid;            /* 0: SO_PEERCRED failed; the request is refused */
    char *body;              /* accumulated body, NUL-terminated; rx__malloc'd */
    size_t body_len;         /* bytes in body */
    size_t body_cap;         /* bytes allocated */
    int too_big;             /* the body went past the limit: answer 413 at the end */
    int responded;           /* a response was queued early (413 on Content-Length) */
    int stop_after;          /* POST /v1/daemon/stop answered: call on_stop on completion */
    int large;               /* holds a large-body turn (large_take) */
    int busy;                /* a large body found no turn: answer 503 (queue_busy) */
    results_stream *results; /* GET .../results answered: its collection ends on completion */
} http_request;

/* A Unix-socket connection's caller, noted once when it starts (MHD's socket context). */
typedef struct http_conn {
    int have_uid; /* SO_PEERCRED answered */
    uid_t uid;    /* the peer's uid */
    int counted;  /* counted in the server's uid_conns */
    int refused;  /* over HTTP_UNIX_PER_UID_CONNECTIONS: answered 503 and shut */
} http_conn;

/* The query parameters of a request, collected from MHD. */
typedef struct http_args {
    api_jobs_arg args[HTTP_MAX_QUERY_ARGS];
    size_t n;
    int too_many;
} http_args;

static void http_log(const char *fmt, ...) RX_PRINTF(1, 2);

static void
http_log(const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(line, sizeof(line), fmt, ap) < 0)
        line[0] = '\0';
    va_end(ap);
    (void)fprintf(stderr, "rxjobd: http: %s\n", line);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* libmicrohttpd's messages allowed per second; the rest are counted, and the count is logged.
 * Anyone who can reach the TCP listener can make it log (a failed TLS handshake is one line),
 * and must not be able to fill the disk with it. */
#define HTTP_MHD_LOG_PER_S 10u

static pthread_mutex_t mhd_log_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t mhd_log_window_ms = INT64_MIN / 2; /* start of the current second */
static unsigned mhd_log_in_window;                /* lines logged in it */
static uint64_t mhd_log_dropped;                  /* lines dropped since the last report */

/* libmicrohttpd's own messages, as our log lines (they end with a newline we drop). */
static void
mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char line[1024];
    size_t len;
    uint64_t dropped = 0;
    int64_t now_ms = rx__now_ms();
    int drop;

    (void)cls;
    pthread_mutex_lock(&mhd_log_mu);
    if (now_ms - mhd_log_window_ms >= 1000) {
        dropped = mhd_log_dropped;
        mhd_log_dropped = 0;
        mhd_log_window_ms = now_ms;
        mhd_log_in_window = 0;
    }
    drop = mhd_log_in_window >= HTTP_MHD_LOG_PER_S;
    if (drop)
        mhd_log_dropped++;
    else
        mhd_log_in_window++;
    pthread_mutex_unlock(&mhd_log_mu);
    if (dropped > 0)
        (void)fprintf(stderr,
                      "rxjobd: http: libmicrohttpd: %" PRIu64 " more messages were not logged (at "
                      "most %u a second)\n",
                      dropped, HTTP_MHD_LOG_PER_S);
    if (drop)
        return;
    if (vsnprintf(line, sizeof(line), fmt, ap) < 0)
        return;
    len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    (void)fprintf(stderr, "rxjobd: http: libmicrohttpd: %s\n", line);
}

/* ------------------------------------------------------------------------------------------ */
/* The socket                                                                                  */
/* ------------------------------------------------------------------------------------------ */

static int
fill_sockaddr(const char *path, struct sockaddr_un *sa)
{
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof(sa->sun_path))
        return -1;
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, len + 1);
    return 0;
}

rx_err
http_listen_unix(const char *path, int *out_fd, char *errbuf, size_t errlen)
{
    struct sockaddr_un sa;
    mode_t old_mask;
    int fd;
    int saved;

    if (path == NULL || out_fd == NULL || fill_sockaddr(path, &sa) != 0) {
        (void)snprintf(errbuf, errlen, "socket path '%s' is empty or longer than %zu bytes",
                       path != NULL ? path : "", sizeof(sa.sun_path) - 1);
        return RX_EINVAL;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        saved = errno;
        (void)snprintf(errbuf, errlen, "socket failed: %s", strerror(saved));
        errno = saved;
        return RX_ESYSTEM;
    }
    /* The socket file is born 0600: nobody else may connect even before the chmod. */
    old_mask = umask(077);
    if (bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0) {
        saved = errno;
        umask(old_mask);
        (void)snprintf(errbuf, errlen, "bind '%s' failed: %s", path, strerror(saved));
        goto fail;
    }
    umask(old_mask);
    if (chmod(path, 0600) != 0) {
        saved = errno;
        (void)snprintf(errbuf, errlen, "chmod '%s' failed: %s", path, strerror(saved));
        (void)unlink(path);
        goto fail;
    }
    if (listen(fd, HTTP_BACKLOG) != 0) {
        saved = errno;
        (void)snprintf(errbuf, errlen, "listen '%s' failed: %s", path, strerror(saved));
        (void)unlink(path);
        goto fail;
    }
    *out_fd = fd;
    return RX_OK;

fail:
    (void)close(fd);
    errno = saved;
    return RX_ESYSTEM;
}

int
http_probe_unix(const char *path, pid_t *out_pid)
{
    struct sockaddr_un sa;
    struct ucred cred;
    socklen_t cred_len = sizeof(cred);
    int fd;
    int rc;
    int saved;

    if (path == NULL || fill_sockaddr(path, &sa) != 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    rc = connect(fd, (const struct sockaddr *)&sa, sizeof(sa));
    saved = errno;
    if (rc == 0) {
        if (out_pid != NULL) {
            memset(&cred, 0, sizeof(cred));
            *out_pid =
                getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) == 0 ? cred.pid : 0;
        }
        (void)close(fd);
        return 1;
    }
    (void)close(fd);
    errno = saved;
    return (saved == ENOENT || saved == ECONNREFUSED) ? 0 : -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Responses                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Queue text (malloc'd, taken over) with status and content type. */
static enum MHD_Result
queue_text(struct MHD_Connection *conn, unsigned status, char *text, size_t len,
           const char *content_type)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (text == NULL)
        return MHD_NO; /* out of memory: MHD closes the connection */
    resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Queue the JSON value v (reference taken over) with status. */
static enum MHD_Result
queue_json(struct MHD_Connection *conn, unsigned status, json_t *v)
{
    char *text;

    if (v == NULL)
        return MHD_NO;
    text = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (text == NULL)
        return MHD_NO;
    return queue_text(conn, status, text, strlen(text), "application/json");
}

/* Queue an error body with the status protocol.md gives err. */
static enum MHD_Result
queue_error(struct MHD_Connection *conn, rx_err err, const char *message)
{
    return queue_json(conn, api_jobs_http_status(err),
                      api_jobs_error_json(rx_errname(err), message != NULL && message[0] != '\0'
                                                               ? message
                                                               : rx_strerror(err)));
}

static enum MHD_Result queue_errorf(struct MHD_Connection *conn, rx_err err, const char *fmt, ...)
    RX_PRINTF(3, 4);

static enum MHD_Result
queue_errorf(struct MHD_Connection *conn, rx_err err, const char *fmt, ...)
{
    char message[HTTP_WHY_LEN];
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(message, sizeof(message), fmt, ap) < 0)
        message[0] = '\0';
    va_end(ap);
    return queue_error(conn, err, message);
}

/* 413 for a body over body_bytes: announced_len bytes, or 0 = a chunked body cut off. */
static enum MHD_Result
queue_body_too_big(http_server *s, struct MHD_Connection *conn, uint64_t announced_len)
{
    char why[HTTP_WHY_LEN];

    return queue_error(conn,
                       rx_limits_why(RX_ETOOBIG, why, sizeof(why), "body_bytes", announced_len,
                                     engine_limits(s->engine)->body_bytes),
                       why);
}

static enum MHD_Result
queue_not_found(struct MHD_Connection *conn, int64_t id)
{
    return queue_errorf(conn, RX_ENOENT, "no job %" PRId64, id);
}

/* An engine error for job id: 404 says "no job N", the others their text and cause (the
 * store's message: "database or disk is full"). */
static enum MHD_Result
queue_engine_error(struct MHD_Connection *conn, rx_err err, int64_t id)
{
    const char *cause = engine_errmsg();

    if (err == RX_ENOENT)
        return queue_not_found(conn, id);
    return queue_errorf(conn, err, "job %" PRId64 ": %s%s%s", id, rx_strerror(err),
                        cause[0] != '\0' ? ": " : "", cause);
}

static enum MHD_Result
queue_job(struct MHD_Connection *conn, unsigned status, const engine_job *job)
{
    return queue_json(conn, status, api_jobs_job_json(job));
}

/* ------------------------------------------------------------------------------------------ */
/* Query strings                                                                               */
/* ------------------------------------------------------------------------------------------ */

static enum MHD_Result
collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    http_args *a = cls;

    (void)kind;
    if (a->n >= HTTP_MAX_QUERY_ARGS) {
        a->too_many = 1;
        return MHD_NO;
    }
    a->args[a->n].key = key;
    a->args[a->n].value = value;
    a->n++;
    return MHD_YES;
}

/* 0 on success; else an error response is queued and *ret holds what to return. */
static int
get_args(struct MHD_Connection *conn, http_args *a, enum MHD_Result *ret)
{
    memset(a, 0, sizeof(*a));
    (void)MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, a);
    if (a->too_many) {
        *ret = queue_errorf(conn, RX_EINVAL, "more than %d query parameters", HTTP_MAX_QUERY_ARGS);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Jobs                                                                                        */
/* ------------------------------------------------------------------------------------------ */

static enum MHD_Result
route_submit(http_server *s, struct MHD_Connection *conn, http_request *req)
{
    char why[HTTP_WHY_LEN] = "";
    engine_spec *spec = NULL;
    engine_job job;
    rx_err err;

    err = api_jobs_decode_submit(req->body, req->body_len, req->uid, engine_limits(s->engine),
                                 &spec, why, sizeof(why));
    if (err != RX_OK)
        return queue_error(conn, err, why);
    memset(&job, 0, sizeof(job));
    why[0] = '\0';
    err = engine_submit(s->engine, spec, &job, why, sizeof(why));
    api_jobs_spec_free(spec);
    if (err != RX_OK) {
        if (err != RX_EINVAL && err != RX_ECOUNT)
            http_log("submit failed: %s: %s", rx_errname(err), why[0] != '\0' ? why : "-");
        return queue_error(conn, err, why);
    }
    return queue_job(conn, MHD_HTTP_CREATED, &job);
}

static enum MHD_Result
route_list(http_server *s, struct MHD_Connection *conn, http_request *req)
{
    char why[HTTP_WHY_LEN] = "";
    api_jobs_filter filter;
    engine_job *jobs = NULL;
    size_t n = 0;
    json_t *arr;
    http_args a;
    enum MHD_Result ret;
    rx_err err;

    if (get_args(conn, &a, &ret) != 0)
        return ret;
    err = api_jobs_decode_filter(a.args, a.n, &filter, why, sizeof(why));
    if (err != RX_OK)
        return queue_error(conn, err, why);
    err =
        engine_list(s->engine, req->uid, filter.states, filter.since_s, filter.until_s, &jobs, &n);
    if (err != RX_OK)
        return queue_errorf(conn, err, "listing jobs failed: %s", rx_strerror(err));
    arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        if (json_array_append_new(arr, api_jobs_job_json(&jobs[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    free(jobs);
    if (arr == NULL)
        return MHD_NO;
    return queue_json(conn, MHD_HTTP_OK, json_pack("{s:o}", "jobs", arr));
}

static enum MHD_Result
route_get(http_server *s, struct MHD_Connection *conn, http_request *req, int64_t id)
{
    engine_job job;
    http_args a;
    enum MHD_Result ret;
    rx_err err;

    if (get_args(conn, &a, &ret) != 0)
        return ret;
    if (a.n > 0)
        return queue_errorf(conn, RX_EINVAL, "unknown query parameter '%.64s'", a.args[0].key);
    err = engine_get(s->engine, req->uid, id, &job);
    if (err != RX_OK)
        return queue_engine_error(conn, err, id);
    return queue_job(conn, MHD_HTTP_OK, &job);
}

static enum MHD_Result
route_wait(http_server *s, struct MHD_Connection *conn, http_request *req, int64_t id)
{
    char why[HTTP_WHY_LEN] = "";
    int64_t timeout_ms;
    int64_t deadline_ms;
    engine_job job;
    json_t *obj;
    http_args a;
    enum MHD_Result ret;
    rx_err err;

    if (get_args(conn, &a, &ret) != 0)
        return ret;
    err = api_jobs_decode_wait(a.args, a.n, &timeout_ms, why, sizeof(why));
    if (err != RX_OK)
        return queue_error(conn, err, why);

    /* In slices, so a stopping daemon need not wait for the longest poll. */
    deadline_ms = rx__now_ms() + timeout_ms;
    for (;;) {
        int64_t left_ms = deadline_ms - rx__now_ms();
        int64_t slice_ms = left_ms < HTTP_POLL_SLICE_MS ? left_ms : HTTP_POLL_SLICE_MS;

        memset(&job, 0, sizeof(job));
        err = engine_wait(s->engine, req->uid, id, slice_ms > 0 ? slice_ms : 0, &job);
        if (err != RX_ETIMEDOUT)
            break;
        if (left_ms <= slice_ms)
            break;
        if (atomic_load(&s->stopping))
            return queue_error(conn, RX_ECONTEXT, "the daemon is shutting down");
    }
    if (err != RX_OK && err != RX_ETIMEDOUT)
        return queue_engine_error(conn, err, id);
    obj = api_jobs_job_json(&job);
    if (obj == NULL || json_object_set_new(obj, "timed_out", json_boolean(err == RX_ETIMEDOUT))) {
        json_decref(obj);
        return MHD_NO;
    }
    return queue_json(conn, MHD_HTTP_OK, obj);
}

static enum MHD_Result
route_cancel(http_server *s, struct MHD_Connection *conn, http_request *req, int64_t id)
{
    engine_job job;
    int canceled = 0;
    json_t *obj;
    rx_err err;

    memset(&job, 0, sizeof(job));
    err = engine_cancel(s->engine, req->uid, id, &canceled, &job);
    if (err != RX_OK)
        return queue_engine_error(conn, err, id);
    obj = api_jobs_job_json(&job);
    if (obj == NULL)
        return MHD_NO;
    return queue_json(conn, MHD_HTTP_OK, json_pack("{s:b, s:o}", "canceled", canceled, "job", obj));
}

static enum MHD_Result
route_cleanup(http_server *s, struct MHD_Connection *conn, http_request *req, int64_t id)
{
    char why[HTTP_WHY_LEN] = "";
    char warning[HTTP_WHY_LEN] = "";
    int force = 0;
    int cleaned = 0;
    http_args a;
    enum MHD_Result ret;
    rx_err err;

    if (get_args(conn, &a, &ret) != 0)
        return ret;
    err = api_jobs_decode_flag(a.args, a.n, "force", 0, &force, why, sizeof(why));
    if (err != RX_OK)
        return queue_error(conn, err, why);
    err = engine_cleanup(s->engine, req->uid, id, force, &cleaned, warning, sizeof(warning));
    if (err != RX_OK)
        return queue_engine_error(conn, err, id);
    if (cleaned)
        return queue_json(conn, MHD_HTTP_OK, json_pack("{s:b}", "cleaned", 1));
    return queue_json(conn, MHD_HTTP_OK,
                      json_pack("{s:b, s:s}", "cleaned", 0, "warning",
                                warning[0] != '\0' ? warning : "the job was kept"));
}

/*
 * GET /v1/jobs/{id}/results: the body is produced by api_jobs_results_writer as it is sent, each
 * value read from its file one step at a time. The collection (engine_get_results's claim)
 * ends only when both the response and the request are done with it: the request's completion
 * says whether the body went out whole (MHD_REQUEST_TERMINATED_COMPLETED_OK), and only then is
 * an auto-cleaned job deleted; a client gone mid-body leaves the job as it was.
 */
struct results_stream {
    engine_results *res;
    api_jobs_results_writer *w;
    atomic_int refs;      /* the response (its free callback) and the request (completion) */
    atomic_int delivered; /* set at completion: the whole body was sent */
};

static void
results_release(results_stream *rs)
{
    rx_err err;

    if (atomic_fetch_sub(&rs->refs, 1) != 1)
        return;
    err = engine_results_end(rs->res, atomic_load(&rs->delivered));
    if (err != RX_OK)
        http_log("results of job %" PRId64 ": ending the collection failed: %s: %s",
                 rs->res != NULL ? rs->res->job.id : 0, rx_errname(err), engine_errmsg());
    api_jobs_results_writer_free(rs->w);
    rx__free(rs);
}

static ssize_t
results_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    results_stream *rs = cls;
    size_t n = 0;

    (void)pos;
    if (max == 0)
        return 0;
    if (api_jobs_results_writer_read(rs->w, buf, max, &n) != RX_OK)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

/* The response is done with the stream (MHD's free callback). */
static void
results_free(void *cls)
{
    results_release(cls);
}

static enum MHD_Result
route_results(http_server *s, struct MHD_Connection *conn, http_request *req, int64_t id)
{
    char why[HTTP_WHY_LEN] = "";
    int auto_cleanup = -1;
    engine_results *res = NULL;
    results_stream *rs;
    struct MHD_Response *resp;
    http_args a;
    enum MHD_Result ret;
    rx_err err;

    if (get_args(conn, &a, &ret) != 0)
        return ret;
    err = api_jobs_decode_flag(a.args, a.n, "auto_cleanup", -1, &auto_cleanup, why, sizeof(why));
    if (err != RX_OK)
        return queue_error(conn, err, why);
    err = engine_get_results(s->engine, req->uid, id, auto_cleanup, &res);
    if (err == RX_ENOTFINISHED)
        return queue_errorf(conn, err, "job %" PRId64 " has not finished: it is QUEUED or RUNNING",
                            id);
    if (err == RX_ECANCELED)
        return queue_errorf(conn, err, "job %" PRId64 " was canceled: it has no results", id);
    if (err != RX_OK)
        return queue_engine_error(conn, err, id);

    rs = rx__calloc(1, sizeof(*rs));
    if (rs == NULL) {
        engine_results_free(res); /* nothing delivered: nothing deleted */
        return MHD_NO;
    }
    rs->res = res;
    atomic_init(&rs->refs, 1);
    atomic_init(&rs->delivered, 0);
    rs->w = api_jobs_results_writer_new(res);
    if (rs->w == NULL) {
        results_release(rs);
        return MHD_NO;
    }
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, HTTP_STREAM_BLOCK_BYTES,
                                             results_read, rs, results_free);
    if (resp == NULL) {
        results_release(rs);
        return MHD_NO;
    }
    /* From here the response holds one reference (released by results_free) and the request
     * the other (released by request_completed, which knows whether the body went out). */
    atomic_fetch_add(&rs->refs, 1);
    req->results = rs;
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

/*
 * GET /v1/jobs/{id}/output: the per-task files in task order, each after "==> task N <==".
 * With follow, after that first pass the files are looked at again and again, as tail -f looks
 * at several files: new output of a task is sent after its header again (when another task's
 * output came in between), until the job is over and a last pass found nothing new.
 */
typedef struct output_stream {
    http_server *srv;
    uid_t uid;
    int64_t id;
    int follow;
    char **paths;      /* engine_output_paths's, freed with free() */
    size_t n;          /* tasks */
    off_t *sent;       /* follow: bytes sent of each task's file */
    size_t task;       /* the task being looked at in this pass */
    int first_pass;    /* 1 until every task has had its header */
    int fd;            /* the file being read, or -1 */
    off_t off;         /* where the next read of fd starts */
    size_t shown;      /* task whose header was sent last; SIZE_MAX = none */
    int found;         /* this pass sent something */
    int final;         /* the job is over: this pass is the last unless it finds output */
    int aborted;       /* the daemon is stopping: end the stream as cut short */
    char header[64];   /* pending header text */
    size_t header_len; /* its length */
    size_t header_off; /* bytes of it sent */
} output_stream;

static void
output_free(void *cls)
{
    output_stream *os = cls;

    if (os->fd >= 0)
        (void)close(os->fd);
    for (size_t i = 0; i < os->n; i++)
        free(os->paths[i]);
    free(os->paths);
    rx__free(os->sent);
    rx__free(os);
}

static void
output_queue_header(output_stream *os, size_t task)
{
    int len = snprintf(os->header, sizeof(os->header), "==> task %zu <==\n", task);

    os->header_len = len > 0 ? (size_t)len : 0;
    os->header_off = 0;
    os->shown = task;
}

/* Sleep ms milliseconds (EINTR ends it early, which is harmless here). */
static void
sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};

    (void)nanosleep(&ts, NULL);
}

/* Open the current task's file for the next read, or leave fd at -1 when there is nothing to
 * send from it now (not started yet, or no new bytes). */
static void
output_open_task(output_stream *os)
{
    struct stat st;
    off_t from = os->sent != NULL ? os->sent[os->task] : 0;
    /* Never open(2) what the task may have put there blocking: a FIFO would hang this request
     * and the daemon's stop with it. Anything but a regular file reads as empty. */
    int fd = spool_open_read(os->paths[os->task], NULL);

    os->fd = -1;
    if (fd < 0 && errno != ENOENT && os->first_pass)
        http_log("output of job %" PRId64 " task %zu: '%s' %s: it reads as empty", os->id, os->task,
                 os->paths[os->task],
                 errno == EINVAL || errno == ELOOP ? "is not a regular file" : strerror(errno));
    if (fd < 0)
        return;
    if (!os->first_pass && (fstat(fd, &st) != 0 || st.st_size <= from)) {
        (void)close(fd);
        return;
    }
    os->fd = fd;
    os->off = from;
}

static ssize_t
output_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    output_stream *os = cls;
    size_t n = 0;

    (void)pos;
    while (n < max) {
        /* 1. A pending header. */
        if (os->header_off < os->header_len) {
            size_t k = os->header_len - os->header_off;

            if (k > max - n)
                k = max - n;
            memcpy(buf + n, os->header + os->header_off, k);
            os->header_off += k;
            n += k;
            continue;
        }
        /* 2. Bytes of the open file. */
        if (os->fd >= 0) {
            ssize_t got = pread(os->fd, buf + n, max - n, os->off);

            if (got < 0 && errno == EINTR)
                continue;
            if (got > 0) {
                os->off += got;
                if (os->sent != NULL)
                    os->sent[os->task] = os->off;
                n += (size_t)got;
                os->found = 1;
                continue;
            }
            (void)close(os->fd); /* end of what is there now, or a read error */
            os->fd = -1;
            os->task++;
            continue;
        }
        /* 3. The next task of this pass. */
        if (os->task < os->n) {
            output_open_task(os);
            /* Every task's header in the first pass; later, only before new output of a task
             * other than the one shown last. */
            if (os->first_pass || (os->fd >= 0 && os->shown != os->task))
                output_queue_header(os, os->task);
            if (os->fd < 0)
                os->task++; /* nothing to read from it now */
            continue;
        }
        /* 4. The pass is over. */
        os->first_pass = 0;
        if (!os->follow)
            break;
        if (os->found) {
            os->found = 0;
            os->task = 0;
            continue;
        }
        if (os->final)
            break;
        if (n > 0)
            return (ssize_t)n; /* send what we have before waiting */
        {
            engine_job job;
            rx_err err = engine_get(os->srv->engine, os->uid, os->id, &job);

            if (err != RX_OK || rx_job_status_is_terminal(job.status))
                os->final = 1; /* one more pass collects the last bytes */
            else if (atomic_load(&os->srv->stopping)) {
                os->aborted = 1;
                break;
            } else
                sleep_ms(HTTP_FOLLOW_POLL_MS);
        }
        os->task = 0;
    }
    if (n == 0)
        return os->aborted ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
    return (ssize_t)n;
}

static enum MHD_Result
route_output(http_server *s, struct MHD_Connection *conn, http_request *req, int64_t id)
{
    char why[HTTP_WHY_LEN] = "";
    output_stream *os;
    struct MHD_Response *resp;
    http_args a;
    enum MHD_Result ret;
    int follow = 0;
    rx_err err;

    if (get_args(conn, &a, &ret) != 0)
        return ret;
    err = api_jobs_decode_flag(a.args, a.n, "follow", 0, &follow, why, sizeof(why));
    if (err != RX_OK)
        return queue_error(conn, err, why);

    os = rx__calloc(1, sizeof(*os));
    if (os == NULL)
        return MHD_NO;
    os->srv = s;
    os->uid = req->uid;
    os->id = id;
    os->follow = follow;
    os->fd = -1;
    os->first_pass = 1;
    os->shown = SIZE_MAX;
    err = engine_output_paths(s->engine, req->uid, id, &os->paths, &os->n);
    if (err != RX_OK) {
        rx__free(os);
        return queue_engine_error(conn, err, id);
    }
    if (follow && os->n > 0) {
        os->sent = rx__calloc(os->n, sizeof(*os->sent));
        if (os->sent == NULL) {
            output_free(os);
            return MHD_NO;
        }
    }
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, HTTP_STREAM_BLOCK_BYTES, output_read,
                                             os, output_free);
    if (resp == NULL) {
        output_free(os);
        return MHD_NO;
    }
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ------------------------------------------------------------------------------------------ */
/* The daemon                                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* The statuses a live job can have (a cleaned-up one is gone, never UNDETERMINED here). */
static const rx_job_status live_statuses[] = {RX_JOB_QUEUED, RX_JOB_RUNNING, RX_JOB_FINISHED,
                                              RX_JOB_FAILED, RX_JOB_CANCELED};

static enum MHD_Result
route_daemon(http_server *s, struct MHD_Connection *conn)
{
    engine_stats st;
    json_t *jobs;
    json_t *obj;

    memset(&st, 0, sizeof(st));
    engine_get_stats(s->engine, &st);
    jobs = json_object();
    for (size_t i = 0; jobs != NULL && i < RX__ARRAY_LEN(live_statuses); i++) {
        if (json_object_set_new(jobs, rx_job_status_name(live_statuses[i]),
                                json_integer((json_int_t)st.jobs_by_status[live_statuses[i]]))) {
            json_decref(jobs);
            jobs = NULL;
        }
    }
    if (jobs == NULL)
        return MHD_NO;
    obj = json_pack("{s:s, s:I, s:s, s:I, s:s, s:s, s:f, s:o, s:I, s:b, s:o}", "version",
                    rx_version(), "pid", (json_int_t)getpid(), "executor",
                    st.executor != NULL ? st.executor : "local", "slots", (json_int_t)st.slots,
                    "socket", s->socket_path, "state_dir", s->state_dir, "started_s", s->started_s,
                    "jobs", jobs, "tasks_running", (json_int_t)st.tasks_running, "hold",
                    st.hold != 0, "limits", rx_limits_json(engine_limits(s->engine)));
    /* The TCP listener, when there is one (rxjobd --listen). */
    if (obj != NULL && s->tcp_url != NULL &&
        json_object_set_new(obj, "listen", json_string(s->tcp_url)) != 0) {
        json_decref(obj);
        obj = NULL;
    }
    return queue_json(conn, MHD_HTTP_OK, obj);
}

static enum MHD_Result
route_stop(http_server *s, struct MHD_Connection *conn, http_request *req)
{
    if (req->uid != 0 && req->uid != s->uid)
        return queue_json(conn, MHD_HTTP_FORBIDDEN,
                          api_jobs_error_json("RX_EPERM", "only the daemon's own user or root "
                                                          "may stop it"));
    if (s->on_stop == NULL)
        return queue_error(conn, RX_ECONTEXT, "this daemon cannot be stopped over HTTP");
    req->stop_after = 1;
    return queue_json(conn, MHD_HTTP_OK, json_pack("{s:b}", "stopping", 1));
}

/* Append printf output to a growing buffer; -1 when out of memory. */
static int buf_printf(char **buf, size_t *len, size_t *cap, const char *fmt, ...) RX_PRINTF(4, 5);

static int
buf_printf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return -1;
        if ((size_t)n < *cap - *len) {
            *len += (size_t)n;
            return 0;
        }
        {
            size_t new_cap = *cap * 2 + (size_t)n;
            char *p = realloc(*buf, new_cap); /* handed to MHD, which frees with free() */

            if (p == NULL)
                return -1;
            *buf = p;
            *cap = new_cap;
        }
    }
}

static enum MHD_Result
route_metrics(http_server *s, struct MHD_Connection *conn)
{
    engine_stats st;
    size_t len = 0;
    size_t cap = 2048;
    char *text = malloc(cap);
    int rc = text == NULL ? -1 : 0;
    unsigned large_reading, large_waiting;

    memset(&st, 0, sizeof(st));
    engine_get_stats(s->engine, &st);
    pthread_mutex_lock(&s->large_mu);
    large_reading = s->large_reading;
    large_waiting = s->large_waiting;
    pthread_mutex_unlock(&s->large_mu);
    if (rc == 0)
        rc = buf_printf(&text, &len, &cap,
                        "# HELP rxjobd_jobs Jobs in the store, by status.\n"
                        "# TYPE rxjobd_jobs gauge\n");
    for (size_t i = 0; rc == 0 && i < RX__ARRAY_LEN(live_statuses); i++)
        rc = buf_printf(&text, &len, &cap, "rxjobd_jobs{status=\"%s\"} %zu\n",
                        rx_job_status_name(live_statuses[i]), st.jobs_by_status[live_statuses[i]]);
    if (rc == 0)
        rc =
            buf_printf(&text, &len, &cap,
                       "# HELP rxjobd_tasks_running Task processes running now.\n"
                       "# TYPE rxjobd_tasks_running gauge\n"
                       "rxjobd_tasks_running %zu\n"
                       "# HELP rxjobd_submissions_total Jobs submitted since the daemon started.\n"
                       "# TYPE rxjobd_submissions_total counter\n"
                       "rxjobd_submissions_total %" PRIu64 "\n"
                       "# HELP rxjobd_tasks_started_total Tasks started since the daemon started.\n"
                       "# TYPE rxjobd_tasks_started_total counter\n"
                       "rxjobd_tasks_started_total %" PRIu64 "\n"
                       "# HELP rxjobd_http_requests_total HTTP requests since the daemon started.\n"
                       "# TYPE rxjobd_http_requests_total counter\n"
                       "rxjobd_http_requests_total %" PRIu64 "\n",
                       st.tasks_running, st.submissions_total, st.tasks_started_total,
                       (uint64_t)atomic_load(&s->requests_total));
    if (rc == 0)
        rc = buf_printf(&text, &len, &cap,
                        "# HELP rxjobd_http_large_bodies_reading Request bodies over %zu bytes "
                        "being read or handled (at most %u).\n"
                        "# TYPE rxjobd_http_large_bodies_reading gauge\n"
                        "rxjobd_http_large_bodies_reading %u\n"
                        "# HELP rxjobd_http_large_bodies_waiting Request bodies over %zu bytes "
                        "waiting for their turn.\n"
                        "# TYPE rxjobd_http_large_bodies_waiting gauge\n"
                        "rxjobd_http_large_bodies_waiting %u\n",
                        HTTP_LARGE_BODY_BYTES, HTTP_MAX_LARGE_BODIES, large_reading,
                        HTTP_LARGE_BODY_BYTES, large_waiting);
    if (rc == 0)
        rc = buf_printf(&text, &len, &cap,
                        "# HELP rxjobd_http_unauthorized_total TCP requests answered 401 (no "
                        "known token).\n"
                        "# TYPE rxjobd_http_unauthorized_total counter\n"
                        "rxjobd_http_unauthorized_total %" PRIu64 "\n",
                        (uint64_t)atomic_load(&s->unauthorized_total));
    if (rc != 0) {
        free(text);
        return MHD_NO;
    }
    return queue_text(conn, MHD_HTTP_OK, text, len, "text/plain; version=0.0.4; charset=utf-8");
}

/* ------------------------------------------------------------------------------------------ */
/* Routing                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static enum MHD_Result
method_not_allowed(struct MHD_Connection *conn, const char *method, const char *url)
{
    char message[HTTP_WHY_LEN];

    (void)snprintf(message, sizeof(message), "method %.16s is not allowed on %.128s", method, url);
    return queue_json(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                      api_jobs_error_json(rx_errname(RX_EINVAL), message));
}

/* The id of "/v1/jobs/{id}..." into *out_id; *out_rest = what follows it ("" or "/wait"...).
 * 0 on success, -1 when the segment is not a positive decimal id. */
static int
parse_job_path(const char *path, int64_t *out_id, const char **out_rest)
{
    const char *start = path + strlen("/v1/jobs/");
    const char *end = strchr(start, '/');
    size_t len = end != NULL ? (size_t)(end - start) : strlen(start);
    char digits[24];

    if (len == 0 || len >= sizeof(digits))
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (start[i] < '0' || start[i] > '9')
            return -1;
    }
    memcpy(digits, start, len);
    digits[len] = '\0';
    if (rx__parse_i64(digits, 1, INT64_MAX, out_id) != RX_OK)
        return -1;
    *out_rest = start + len;
    return 0;
}

static enum MHD_Result
route(http_server *s, struct MHD_Connection *conn, http_request *req, const char *url,
      const char *method)
{
    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    int is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    int is_delete = strcmp(method, MHD_HTTP_METHOD_DELETE) == 0;
    const char *rest;
    int64_t id;

    if (strcmp(url, "/v1/jobs") == 0) {
        if (is_post)
            return route_submit(s, conn, req);
        if (is_get)
            return route_list(s, conn, req);
        return method_not_allowed(conn, method, url);
    }
    if (strncmp(url, "/v1/jobs/", strlen("/v1/jobs/")) == 0) {
        if (parse_job_path(url, &id, &rest) != 0)
            return queue_errorf(conn, RX_ENOENT, "no job '%.32s': ids are positive integers",
                                url + strlen("/v1/jobs/"));
        if (rest[0] == '\0') {
            if (is_get)
                return route_get(s, conn, req, id);
            if (is_delete)
                return route_cleanup(s, conn, req, id);
            return method_not_allowed(conn, method, url);
        }
        if (strcmp(rest, "/wait") == 0)
            return is_get ? route_wait(s, conn, req, id) : method_not_allowed(conn, method, url);
        if (strcmp(rest, "/cancel") == 0)
            return is_post ? route_cancel(s, conn, req, id) : method_not_allowed(conn, method, url);
        if (strcmp(rest, "/results") == 0)
            return is_get ? route_results(s, conn, req, id) : method_not_allowed(conn, method, url);
        if (strcmp(rest, "/output") == 0)
            return is_get ? route_output(s, conn, req, id) : method_not_allowed(conn, method, url);
    } else if (strcmp(url, "/v1/daemon") == 0) {
        return is_get ? route_daemon(s, conn) : method_not_allowed(conn, method, url);
    } else if (strcmp(url, "/v1/daemon/stop") == 0) {
        return is_post ? route_stop(s, conn, req) : method_not_allowed(conn, method, url);
    } else if (strcmp(url, "/metrics") == 0) {
        return is_get ? route_metrics(s, conn) : method_not_allowed(conn, method, url);
    }
    return queue_errorf(conn, RX_ENOENT, "no such path: %.128s", url);
}

/*
 * A Unix-socket connection starts: note the peer's uid once for all its requests (SO_PEERCRED
 * gives the credentials of the process that connected, fixed for the connection's life). When it
 * cannot be had, the socket context stays NULL and every request is refused.
 */
/* Count a connection of uid in (delta 1: 0, or -1 when uid has its HTTP_UNIX_PER_UID_CONNECTIONS
 * already, or on no memory) or out (delta -1). */
static int
uid_conns_add(http_server *s, uid_t uid, int delta)
{
    struct http_uid_conns *c = NULL;
    int rc = 0;

    pthread_mutex_lock(&s->conn_mu);
    for (size_t i = 0; i < s->n_uid_conns && c == NULL; i++)
        if (s->uid_conns[i].uid == uid)
            c = &s->uid_conns[i];
    if (delta < 0) {
        if (c != NULL && c->n > 0)
            c->n--;
    } else if (c == NULL) {
        struct http_uid_conns *p = rx__realloc(s->uid_conns, (s->n_uid_conns + 1) * sizeof(*p));

        if (p == NULL) {
            rc = -1;
        } else {
            s->uid_conns = p;
            p[s->n_uid_conns].uid = uid;
            p[s->n_uid_conns++].n = 1;
        }
    } else if (c->n >= HTTP_UNIX_PER_UID_CONNECTIONS) {
        rc = -1;
    } else {
        c->n++;
    }
    pthread_mutex_unlock(&s->conn_mu);
    return rc;
}

/* Refuse a connection over its user's cap: a 503 written straight to it, then both directions
 * shut, so that MHD closes it at once (it sees end-of-file) and no thread is held. */
static void
refuse_connection(int fd, uid_t uid)
{
    char body[256], msg[512];
    int body_len = snprintf(body, sizeof(body),
                            "{\"error\":\"RX_ECONTEXT\",\"message\":\"uid %lu has %u connections "
                            "to the daemon open already: close some and try again\"}",
                            (unsigned long)uid, HTTP_UNIX_PER_UID_CONNECTIONS);
    int n = snprintf(msg, sizeof(msg),
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Connection: close\r\nContent-Length: %d\r\n\r\n%s",
                     body_len, body);

    if (n > 0 && (size_t)n < sizeof(msg))
        (void)!send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)shutdown(fd, SHUT_RDWR);
}

static void
notify_unix(void *cls, struct MHD_Connection *conn, void **socket_context,
            enum MHD_ConnectionNotificationCode toe)
{
    http_server *s = ((const http_side *)cls)->s;
    const union MHD_ConnectionInfo *info;
    http_conn *hc;
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        hc = *socket_context;
        if (hc != NULL && hc->counted)
            (void)uid_conns_add(s, hc->uid, -1);
        rx__free(*socket_context);
        *socket_context = NULL;
        return;
    }
    if (toe != MHD_CONNECTION_NOTIFY_STARTED)
        return;
    info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    hc = rx__calloc(1, sizeof(*hc));
    if (hc == NULL)
        return;
    memset(&cred, 0, sizeof(cred));
    if (info != NULL && getsockopt(info->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
        len == sizeof(cred)) {
        hc->uid = cred.uid;
        hc->have_uid = 1;
        if (hc->uid != 0 && hc->uid != s->uid) {
            if (uid_conns_add(s, hc->uid, 1) == 0) {
                hc->counted = 1;
            } else {
                hc->refused = 1;
                refuse_connection(info->connect_fd, hc->uid);
            }
        }
    }
    *socket_context = hc;
}

/* "127.0.0.1:40312" or "[::1]:40312": the TCP peer, for the log. */
static void
peer_text(struct MHD_Connection *conn, char *buf, size_t len)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;

    if (info != NULL && info->client_addr != NULL) {
        const struct sockaddr *sa = info->client_addr;

        if (sa->sa_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

            (void)inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
            port = ntohs(in->sin_port);
        } else if (sa->sa_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

            (void)inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
            port = ntohs(in6->sin6_port);
            (void)snprintf(buf, len, "[%s]:%d", host, port);
            return;
        }
    }
    (void)snprintf(buf, len, "%s:%d", host, port);
}

/*
 * A TCP request: its token names the caller. 0 with req->uid set; -1 when there is no known
 * token, after queueing 401 (RFC 6750: WWW-Authenticate: Bearer, with error="invalid_token" when
 * a token was given) with a protocol error body, *ret holding what to return. Called from the
 * request's first call, so the 401 goes out before any of the body is read.
 */
static int
authenticate(http_server *s, struct MHD_Connection *conn, http_request *req, enum MHD_Result *ret)
{
    const char *authz =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    auth_result r = auth_check(s->tokens, authz, &req->uid);
    const char *message;
    struct MHD_Response *resp;
    json_t *body;
    char *text;
    int64_t now_ms, last_ms;

    if (r == AUTH_OK) {
        req->have_uid = 1;
        /* Known now: the idle time a long poll or a keep-alive needs. */
        (void)MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
                                        HTTP_CONNECTION_TIMEOUT_S);
        return 0;
    }
    message = r == AUTH_MISSING ? "no token: over TCP every request needs the header "
                                  "\"Authorization: Bearer TOKEN\""
              : r == AUTH_MALFORMED
                  ? "the Authorization header is not \"Bearer TOKEN\" with a well-formed token"
                  : "the token is not one this daemon knows";
    atomic_fetch_add(&s->unauthorized_total, 1);
    now_ms = rx__now_ms();
    last_ms = atomic_load(&s->unauth_logged_ms);
    if (now_ms - last_ms >= HTTP_UNAUTH_LOG_MS &&
        atomic_compare_exchange_strong(&s->unauth_logged_ms, &last_ms, now_ms)) {
        char peer[INET6_ADDRSTRLEN + 16];

        peer_text(conn, peer, sizeof(peer));
        http_log("401 to %s: %s (%" PRIu64 " refused so far; at most one such line a second)", peer,
                 message, (uint64_t)atomic_load(&s->unauthorized_total));
    }
    body = api_jobs_error_json(rx_errname(RX_EPERM), message);
    text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    *ret = MHD_NO;
    if (text == NULL)
        return -1;
    resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return -1;
    }
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                  r == AUTH_MISSING
                                      ? "Bearer realm=\"rxjobd\""
                                      : "Bearer realm=\"rxjobd\", error=\"invalid_token\"");
    *ret = MHD_queue_response(conn, MHD_HTTP_UNAUTHORIZED, resp);
    MHD_destroy_response(resp);
    return -1;
}

/* Refuse a body announced over the limit, before reading it: its announced length, else 0. */
static uint64_t
announced_too_big(struct MHD_Connection *conn, uint64_t max)
{
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int64_t len;

    if (cl == NULL)
        return 0;
    /* A malformed Content-Length is MHD's to refuse; only a well-formed big one is ours. */
    if (rx__parse_i64(cl, 0, INT64_MAX, &len) != RX_OK)
        return 0;
    return (uint64_t)len > max ? (uint64_t)len : 0;
}

/* Append a piece of body; -1 past the limit of max bytes, -2 out of memory. */
static int
append_body(http_request *req, const char *data, size_t len, size_t max)
{
    if (len > max - req->body_len)
        return -1;
    if (req->body_len + len + 1 > req->body_cap) {
        size_t cap = req->body_cap > 0 ? req->body_cap : 4096;
        char *p;

        while (cap < req->body_len + len + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        p = rx__realloc(req->body, cap);
        if (p == NULL)
            return -2;
        req->body = p;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return 0;
}

static void
drop_body(http_request *req)
{
    rx__free(req->body);
    req->body = NULL;
    req->body_len = req->body_cap = 0;
}

/* Take a large-body turn, waiting for one up to HTTP_LARGE_BODY_WAIT_MS (in slices, so a
 * stopping daemon is not held up). 0, or -1 when none came in time or the daemon is stopping. */
static int
large_take(http_server *s, http_request *req)
{
    int64_t deadline_ms = rx__now_ms() + HTTP_LARGE_BODY_WAIT_MS;
    int rc = 0;

    pthread_mutex_lock(&s->large_mu);
    s->large_waiting++;
    while (s->large_reading >= HTTP_MAX_LARGE_BODIES) {
        int64_t left_ms = deadline_ms - rx__now_ms();
        int64_t slice_ms = left_ms < HTTP_POLL_SLICE_MS ? left_ms : HTTP_POLL_SLICE_MS;
        struct timespec ts;

        if (left_ms <= 0 || atomic_load(&s->stopping)) {
            rc = -1;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(slice_ms / 1000);
        ts.tv_nsec += (long)(slice_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&s->large_cond, &s->large_mu, &ts);
    }
    s->large_waiting--;
    if (rc == 0) {
        s->large_reading++;
        req->large = 1;
    }
    pthread_mutex_unlock(&s->large_mu);
    return rc;
}

static void
large_give(http_server *s, http_request *req)
{
    if (!req->large)
        return;
    req->large = 0;
    pthread_mutex_lock(&s->large_mu);
    s->large_reading--;
    pthread_cond_signal(&s->large_cond);
    pthread_mutex_unlock(&s->large_mu);
}

/* Refuse a large body that found no turn: 503, at once if MHD takes an early answer (it then
 * reads no more of the body), else once the rest has been read and dropped. */
static enum MHD_Result
queue_busy(http_server *s, struct MHD_Connection *conn, http_request *req)
{
    enum MHD_Result ret;

    req->busy = 1;
    drop_body(req);
    if (atomic_load(&s->stopping))
        ret = queue_error(conn, RX_ECONTEXT, "the daemon is shutting down");
    else
        ret = queue_errorf(conn, RX_ECONTEXT,
                           "the daemon is busy: %u other request bodies over %zu bytes are being "
                           "read, and none was done within %d s: try again later",
                           HTTP_MAX_LARGE_BODIES, HTTP_LARGE_BODY_BYTES,
                           HTTP_LARGE_BODY_WAIT_MS / 1000);
    if (ret == MHD_YES)
        req->responded = 1;
    return MHD_YES;
}

/* A body announced over HTTP_LARGE_BODY_BYTES (Content-Length). */
static int
announced_large(struct MHD_Connection *conn)
{
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int64_t len;

    return cl != NULL && rx__parse_i64(cl, 0, INT64_MAX, &len) == RX_OK &&
           (uint64_t)len > HTTP_LARGE_BODY_BYTES;
}

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Percent-decode the path and each query key and value in place, as libmicrohttpd would, but
 * leave "%00" as it is: a NUL would cut the C string short ("/v1/jobs/1%00" would read as job 1,
 * "timeout_s=1%00" as 1). Kept as text, it is refused by the parsers like any other bad byte
 * (404 for a path, 400 for a query value). Returns the new length.
 */
static size_t
unescape_no_nul(void *cls, struct MHD_Connection *conn, char *text)
{
    char *r = text, *w = text;

    (void)cls;
    (void)conn;
    while (*r != '\0') {
        int hi = r[0] == '%' ? hex_value(r[1]) : -1;
        int lo = hi >= 0 ? hex_value(r[2]) : -1;

        if (lo >= 0 && (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - text);
}

static enum MHD_Result
access_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
               const char *version, const char *upload_data, size_t *upload_data_size,
               void **con_cls)
{
    const http_side *side = cls;
    http_server *s = side->s;
    http_request *req = *con_cls;

    (void)version;
    if (req == NULL) {
        /* First call: the headers are in. */
        req = rx__calloc(1, sizeof(*req));
        if (req == NULL)
            return MHD_NO;
        *con_cls = req;
        atomic_fetch_add(&s->requests_total, 1);
        atomic_fetch_add(&s->active, 1);
        if (side->is_tcp) {
            enum MHD_Result ret;

            /* Nobody unknown gets further: no body read, no large-body turn taken. */
            if (authenticate(s, conn, req, &ret) != 0) {
                req->responded = 1;
                return ret;
            }
        } else {
            const union MHD_ConnectionInfo *info =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
            const http_conn *hc = info != NULL ? info->socket_context : NULL;

            if (hc != NULL && hc->refused)
                return MHD_NO; /* answered already (refuse_connection) */
            if (hc != NULL && hc->have_uid) {
                req->uid = hc->uid;
                req->have_uid = 1;
            }
        }
        if (announced_too_big(conn, engine_limits(s->engine)->body_bytes) > 0) {
            req->responded = 1;
            return queue_body_too_big(s, conn, announced_too_big(conn, 0));
        }
        /* A large body waits for its turn before a byte of it is read. */
        if (announced_large(conn) && large_take(s, req) != 0)
            return queue_busy(s, conn, req);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /* A piece of body: keep it, or drop it past the limit. */
        size_t len = *upload_data_size;

        *upload_data_size = 0;
        if (req->responded || req->too_big || req->busy)
            return MHD_YES;
        /* A body not announced as large (chunked) waits for its turn once it grows large. */
        if (!req->large && req->body_len + len > HTTP_LARGE_BODY_BYTES && large_take(s, req) != 0)
            return queue_busy(s, conn, req);
        switch (append_body(req, upload_data, len, engine_limits(s->engine)->body_bytes)) {
        case 0:
            return MHD_YES;
        case -1:
            /* Answer at once; MHD then reads no more of the body and closes the connection.
             * Should it refuse the early answer, the rest is read and dropped, and the 413
             * goes out at the end. */
            req->too_big = 1;
            drop_body(req);
            if (queue_body_too_big(s, conn, 0) == MHD_YES)
                req->responded = 1;
            return MHD_YES;
        default:
            return MHD_NO;
        }
    }
    if (req->responded)
        return MHD_YES;

    /* The whole request is in. */
    if (req->busy) {
        (void)queue_busy(s, conn, req);
        return req->responded ? MHD_YES : MHD_NO;
    }
    if (req->too_big)
        return queue_body_too_big(s, conn, 0);
    if (!req->have_uid)
        return queue_error(conn, RX_ESYSTEM, "cannot tell who is calling (SO_PEERCRED failed)");
    if (atomic_load(&s->stopping))
        return queue_error(conn, RX_ECONTEXT, "the daemon is shutting down");
    {
        enum MHD_Result ret = route(s, conn, req, url, method);

        /* Parsed and handled: the body's memory, and its turn, go now. */
        drop_body(req);
        large_give(s, req);
        return ret;
    }
}

static void
request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                  enum MHD_RequestTerminationCode toe)
{
    const http_side *side = cls;
    http_server *s = side->s;
    http_request *req = *con_cls;

    (void)conn;
    if (req == NULL)
        return;
    *con_cls = NULL;
    if (req->results != NULL) {
        /* Delivered only if MHD sent the whole body; otherwise the collection deletes nothing
         * and the job can be collected again. */
        atomic_store(&req->results->delivered,
                     toe == MHD_REQUEST_TERMINATED_COMPLETED_OK &&
                         api_jobs_results_writer_finished(req->results->w));
        results_release(req->results);
        req->results = NULL;
    }
    if (req->stop_after && s->on_stop != NULL)
        s->on_stop(s->stop_user);
    drop_body(req);
    large_give(s, req);
    rx__free(req);
    atomic_fetch_sub(&s->active, 1);
}

/* ------------------------------------------------------------------------------------------ */
/* Start and stop                                                                              */
/* ------------------------------------------------------------------------------------------ */

int
http_tls_supported(void)
{
    return MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES;
}

/* The GnuTLS priorities of the TCP listener: TLS 1.2 and 1.3 only. */
static char tls_priorities[] = HTTP_TLS_PRIORITIES;

/* Start one listener on fd: the Unix socket (tcp NULL) or the TCP one. NULL when MHD refused
 * (its message is logged); fd is then still open. */
static struct MHD_Daemon *
start_listener(http_server *s, http_side *side, int fd, const http_tcp_opts *tcp)
{
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct MHD_OptionItem extra[6];
    size_t n = 0;

    if (tcp != NULL) {
        extra[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                             HTTP_TCP_PER_IP_CONNECTIONS, NULL};
        if (s->tls_cert != NULL) {
            flags |= MHD_USE_TLS;
            extra[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key};
            extra[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert};
            extra[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, tls_priorities};
        }
    } else {
        /* Who calls is asked once per connection (notify_unix), not per request. */
        extra[n++] =
            (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)notify_unix, side};
    }
    extra[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return MHD_start_daemon(
        flags, 0, NULL, NULL, access_handler, side, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_NOTIFY_COMPLETED, request_completed,
        side, MHD_OPTION_CONNECTION_LIMIT, HTTP_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
        /* Over TCP a connection is closed soon unless it sends a known token (authenticate):
         * idle ones sending nothing must not hold the per-address cap for long. */
        tcp != NULL ? HTTP_TCP_UNAUTH_TIMEOUT_S : HTTP_CONNECTION_TIMEOUT_S,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape_no_nul, NULL, MHD_OPTION_ARRAY, extra,
        MHD_OPTION_END);
}

/* Free what http_start set up (the listeners are stopped or never started). NULL-safe. */
static void
server_free(http_server *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->large_mu);
    pthread_cond_destroy(&s->large_cond);
    pthread_mutex_destroy(&s->conn_mu);
    rx__free(s->uid_conns);
    rx__free(s->socket_path);
    rx__free(s->state_dir);
    rx__free(s->tcp_url);
    rx__free(s->tls_cert);
    if (s->tls_key != NULL) {
        explicit_bzero(s->tls_key, strlen(s->tls_key));
        rx__free(s->tls_key);
    }
    auth_tokens_free(s->tokens);
    rx__free(s);
}

rx_err
http_start(const http_opts *opts, engine *e, http_server **out_server, char *errbuf, size_t errlen)
{
    http_server *s = NULL;
    const http_tcp_opts *tcp = opts != NULL ? opts->tcp : NULL;
    int listen_fd = opts != NULL ? opts->listen_fd : -1;
    int tcp_fd = tcp != NULL ? tcp->listen_fd : -1;
    auth_tokens *tokens = tcp != NULL ? tcp->tokens : NULL;
    rx_err err;

    if (opts == NULL || e == NULL || out_server == NULL || listen_fd < 0 ||
        (tcp != NULL && tcp_fd < 0)) {
        (void)snprintf(errbuf, errlen, "http_start: missing argument");
        err = RX_EINVAL;
        goto fail;
    }
    if (tcp != NULL && auth_tokens_count(tokens) == 0) {
        (void)snprintf(errbuf, errlen, "http_start: a TCP listener needs tokens");
        err = RX_EINVAL;
        goto fail;
    }
    s = rx__calloc(1, sizeof(*s));
    if (s == NULL) {
        (void)snprintf(errbuf, errlen, "out of memory");
        err = RX_ENOMEM;
        goto fail;
    }
    {
        pthread_condattr_t ca;

        pthread_mutex_init(&s->large_mu, NULL);
        pthread_mutex_init(&s->conn_mu, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->large_cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    s->unix_side = (http_side){.s = s, .is_tcp = 0};
    s->tcp_side = (http_side){.s = s, .is_tcp = 1};
    s->engine = e;
    s->socket_path = rx__strdup(opts->socket_path != NULL ? opts->socket_path : "");
    s->state_dir = rx__strdup(opts->state_dir != NULL ? opts->state_dir : "");
    if (s->socket_path == NULL || s->state_dir == NULL) {
        (void)snprintf(errbuf, errlen, "out of memory");
        err = RX_ENOMEM;
        goto fail;
    }
    if (tcp != NULL) {
        s->tokens = tokens;
        tokens = NULL;
        s->tcp_url = rx__strdup(tcp->url != NULL ? tcp->url : "");
        if (tcp->tls_cert_pem != NULL) {
            s->tls_cert = rx__strdup(tcp->tls_cert_pem);
            s->tls_key = rx__strdup(tcp->tls_key_pem != NULL ? tcp->tls_key_pem : "");
        }
        if (s->tcp_url == NULL ||
            (tcp->tls_cert_pem != NULL && (s->tls_cert == NULL || s->tls_key == NULL))) {
            (void)snprintf(errbuf, errlen, "out of memory");
            err = RX_ENOMEM;
            goto fail;
        }
    }
    s->started_s = opts->started_s;
    s->uid = getuid();
    s->on_stop = opts->on_stop;
    s->stop_user = opts->stop_user;
    atomic_init(&s->stopping, 0);
    atomic_init(&s->quiesced, 0);
    atomic_init(&s->requests_total, 0);
    atomic_init(&s->active, 0);
    atomic_init(&s->unauthorized_total, 0);
    atomic_init(&s->unauth_logged_ms, INT64_MIN / 2);

    if (tcp != NULL) {
        s->mhd_tcp = start_listener(s, &s->tcp_side, tcp_fd, tcp);
        if (s->mhd_tcp == NULL) {
            (void)snprintf(errbuf, errlen,
                           "libmicrohttpd did not start on %s (see its message above)", s->tcp_url);
            err = RX_ESYSTEM;
            goto fail;
        }
        tcp_fd = -1; /* MHD's now: MHD_stop_daemon closes it */
    }
    s->mhd = start_listener(s, &s->unix_side, listen_fd, NULL);
    if (s->mhd == NULL) {
        (void)snprintf(errbuf, errlen, "libmicrohttpd did not start (see its message above)");
        err = RX_ESYSTEM;
        goto fail;
    }
    *out_server = s;
    return RX_OK;

fail:
    if (listen_fd >= 0)
        (void)close(listen_fd);
    if (tcp_fd >= 0)
        (void)close(tcp_fd);
    auth_tokens_free(tokens);
    if (s != NULL && s->mhd_tcp != NULL)
        MHD_stop_daemon(s->mhd_tcp);
    server_free(s);
    return err;
}

void
http_quiesce(http_server *s)
{
    MHD_socket fd;

    if (s == NULL)
        return;
    atomic_store(&s->stopping, 1);
    if (atomic_exchange(&s->quiesced, 1))
        return;
    fd = MHD_quiesce_daemon(s->mhd);
    if (fd != MHD_INVALID_SOCKET)
        (void)close(fd);
    if (s->mhd_tcp != NULL) {
        fd = MHD_quiesce_daemon(s->mhd_tcp);
        if (fd != MHD_INVALID_SOCKET)
            (void)close(fd);
    }
}

void
http_stop(http_server *s)
{
    if (s == NULL)
        return;
    http_quiesce(s);
    /* Let the requests in progress answer (long polls and followed output give up within a
     * poll interval once stopping is set) before MHD closes their connections. */
    for (int64_t waited_ms = 0; atomic_load(&s->active) > 0 && waited_ms < HTTP_DRAIN_MS;
         waited_ms += 10)
        sleep_ms(10);
    MHD_stop_daemon(s->mhd);
    if (s->mhd_tcp != NULL)
        MHD_stop_daemon(s->mhd_tcp);
    server_free(s);
}
