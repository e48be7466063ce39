/*
 * ctx_server.c - the server compute context (revoscalepy's remote contexts): jobs run in rxjobd
 * and outlive the caller. Every operation is one or a few HTTP requests of docs/protocol.md over
 * the daemon's Unix socket (http_client.c); this file turns rxjob.h's calls into requests and the
 * answers back into rxjob.h's results and status codes.
 *
 * The context made with a NULL url is the embedded default: the per-user daemon, started when
 * nothing answers on its socket (daemon_start.c) by the calls that create or list jobs (rx_exec,
 * rx_get_jobs). A status query never starts a daemon: a daemon that is not there knows no job,
 * so the job's status cannot be determined.
 *
 * A task's environment is the caller's (as sbatch exports it by default), plus work->env; its
 * working directory is the caller's unless work->cwd says otherwise. Both are sent with the job
 * because the daemon runs in its own environment and directory.
 */
#define _GNU_SOURCE /* realpath */
#include "client/ctx_server.h"

#include "client/context.h"
#include "client/daemon_start.h"
#include "client/dynlib.h"
#include "client/http_client.h"
#include "client/registry.h"
#include "core/internal.h"
#include "core/results.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* The longest long poll asked of the daemon, in seconds (protocol.md: 0 <= S <= 60). */
#define WAIT_POLL_MAX_S 60.0

/* Slack on top of a long poll before the client gives up on the daemon, in milliseconds. */
#define WAIT_SLACK_MS 30000L

/* The most bytes one base64 call handles (EVP_EncodeBlock and EVP_DecodeBlock count in int). */
#define B64_MAX_BYTES ((size_t)1 << 30)

typedef struct server_impl {
    rx__http *http;
    char state_dir[PATH_MAX]; /* "" when none could be found (then starting fails) */
    int may_start;            /* the embedded default: start rxjobd when nothing answers */
    int unix_url;             /* a unix: url given by the caller (never started by us) */
    pthread_mutex_t lock;     /* guards ctx->errmsg and starting the daemon */
} server_impl;

static server_impl *
impl_of(const rx_context *ctx)
{
    return ctx->impl;
}

static void set_errmsg(rx_context *ctx, const char *fmt, ...) RX_PRINTF(2, 3);

static void
set_errmsg(rx_context *ctx, const char *fmt, ...)
{
    server_impl *impl = impl_of(ctx);
    va_list ap;

    (void)pthread_mutex_lock(&impl->lock);
    va_start(ap, fmt);
    (void)vsnprintf(ctx->errmsg, sizeof(ctx->errmsg), fmt, ap);
    va_end(ap);
    (void)pthread_mutex_unlock(&impl->lock);
}

/* ---------------------------------------------------------------------------------------------
 * Base64 (protocol.md "Bytes"), with OpenSSL's block functions
 * ------------------------------------------------------------------------------------------- */

/*
 * libcrypto, loaded on first use (dynlib.h): the calls that encode or decode base64 (rx_exec,
 * rx_get_job_results) make sure of it first, so b64_* below may count on it. RX_OK; RX_ECONTEXT
 * (it cannot be loaded: errmsg names the library and why).
 */
static rx_err
b64_ready(rx_context *ctx, const char *what)
{
    const char *why = "";

    if (rx__crypto(&why) != NULL)
        return RX_OK;
    set_errmsg(ctx, "%s: %s", what, why);
    return RX_ECONTEXT;
}

/* A JSON string holding the base64 of len bytes at data; NULL on ENOMEM or over B64_MAX_BYTES. */
static json_t *
b64_json(const void *data, size_t len)
{
    unsigned char *text;
    json_t *s;
    int n;

    if (len > B64_MAX_BYTES)
        return NULL;
    text = rx__malloc((len + 2) / 3 * 4 + 1);
    if (text == NULL)
        return NULL;
    n = rx__crypto(NULL)->encode_block(text, len > 0 ? data : (const void *)"", (int)len);
    s = n >= 0 ? json_stringn_nocheck((const char *)text, (size_t)n) : NULL;
    rx__free(text);
    return s;
}

/* Decode a JSON base64 string into a new buffer followed by a NUL. RX_OK; RX_EINVAL (not base64);
 * RX_ENOMEM. */
static rx_err
b64_decode(const json_t *s, void **out_data, size_t *out_len)
{
    const char *text = json_string_value(s);
    size_t text_len = json_string_length(s);
    size_t pad = 0, len;
    unsigned char *buf;
    int n;

    if (text == NULL || text_len % 4 != 0 || text_len > B64_MAX_BYTES)
        return RX_EINVAL;
    if (text_len > 0 && text[text_len - 1] == '=')
        pad++;
    if (text_len > 1 && text[text_len - 2] == '=')
        pad++;
    buf = rx__malloc(text_len / 4 * 3 + 1);
    if (buf == NULL)
        return RX_ENOMEM;
    n = text_len > 0
            ? rx__crypto(NULL)->decode_block(buf, (const unsigned char *)text, (int)text_len)
            : 0;
    if (n < 0 || (size_t)n < pad) {
        rx__free(buf);
        return RX_EINVAL;
    }
    len = (size_t)n - pad; /* EVP_DecodeBlock counts the padding as zero bytes */
    buf[len] = '\0';
    *out_data = buf;
    *out_len = len;
    return RX_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Requests and their answers
 * ------------------------------------------------------------------------------------------- */

/* What to do when no daemon answers on the context's Unix socket: who starts that one. */
static const char *
start_hint(const server_impl *impl)
{
    const char *sock = rx__http_socket(impl->http);

    if (sock == NULL)
        return ""; /* https: the transfer's message says it */
    if (strncmp(sock, RX__SYSTEM_SOCKET_DIR, sizeof(RX__SYSTEM_SOCKET_DIR) - 1) == 0)
        return "; the system daemon is root's to start: 'rxjobd --system', or 'systemctl "
               "enable --now rxjobd.socket' (rxjobd(8))";
    if (impl->unix_url)
        return "; nothing starts a daemon for a socket given by url: start one with "
               "'rxjobd --socket PATH' (rxjobd(8))";
    return "; 'rxjob daemon start' starts the per-user daemon";
}

/*
 * One request. may_start: the call is one that may start the embedded default daemon. RX_OK when
 * an HTTP answer came (any status); RX_ECONTEXT (detail in ctx's errmsg) when the daemon could
 * not be reached (or started); RX_ENOMEM.
 */
static rx_err
request(rx_context *ctx, int may_start, const char *method, const char *path, const char *body,
        size_t body_len, long timeout_ms, rx__http_reply *reply)
{
    server_impl *impl = impl_of(ctx);
    char why[400];
    int conn_errno = 0;
    rx_err err;

    err = rx__http_text(impl->http, method, path, body, body_len, timeout_ms, reply, &conn_errno,
                        why, sizeof(why));
    if (err == RX_ECONTEXT && may_start && impl->may_start &&
        (conn_errno == ENOENT || conn_errno == ECONNREFUSED)) {
        const char *sock = rx__http_socket(impl->http);
        char start_why[400];
        rx_err start_err = RX_OK;

        /* One thread of this context starts it; the daemon's lock settles other processes. */
        (void)pthread_mutex_lock(&impl->lock);
        if (!rx__daemon_answers(sock, NULL)) {
            if (impl->state_dir[0] == '\0') {
                (void)snprintf(start_why, sizeof(start_why),
                               "start rxjobd: no state directory: set RXJOB_STATE_DIR or HOME");
                start_err = RX_ECONTEXT;
            } else {
                start_err = rx__daemon_start(sock, impl->state_dir, start_why, sizeof(start_why));
            }
        }
        (void)pthread_mutex_unlock(&impl->lock);
        if (start_err != RX_OK) {
            set_errmsg(ctx, "%s", start_why);
            return start_err;
        }
        err = rx__http_text(impl->http, method, path, body, body_len, timeout_ms, reply,
                            &conn_errno, why, sizeof(why));
    }
    if (err != RX_OK)
        set_errmsg(ctx, "%s%s", why,
                   err == RX_ECONTEXT && (conn_errno == ENOENT || conn_errno == ECONNREFUSED)
                       ? start_hint(impl)
                       : "");
    return err;
}

/* The rx_err an error body names ("RX_EINVAL"), or fallback (also for "RX_OK": an error body
 * must not turn into a success). */
static rx_err
err_from_name(const char *name, rx_err fallback)
{
    if (name == NULL || strcmp(name, "RX_OK") == 0)
        return fallback;
#define RX_ERR_FROM_NAME(ename, code, msg) \
    if (strcmp(name, "RX_" #ename) == 0)   \
        return RX_##ename;
    RX_ERR_MAP(RX_ERR_FROM_NAME)
#undef RX_ERR_FROM_NAME
    return fallback;
}

/* An answer that is not the one hoped for, as an rx_err, with the daemon's message in errmsg. */
static rx_err
reply_error(rx_context *ctx, const char *what, const rx__http_reply *reply)
{
    const char *name = NULL;
    rx_err fallback;

    switch (reply->status) {
    case 400:
    case 405:
        fallback = RX_EINVAL;
        break;
    case 401: /* over TCP: no token the daemon knows */
    case 403:
        fallback = RX_EPERM;
        break;
    case 404:
        fallback = RX_ENOENT;
        break;
    case 409:
        fallback = RX_ENOTFINISHED;
        break;
    case 413:
        fallback = RX_ETOOBIG;
        break;
    case 429:
        fallback = RX_ELIMIT;
        break;
    case 500:
        fallback = RX_ESTORE;
        break;
    default:
        fallback = RX_ECONTEXT;
        break;
    }
    if (json_is_object(reply->body))
        name = json_string_value(json_object_get(reply->body, "error"));
    set_errmsg(ctx, "%s: %s (HTTP %ld%s%s)", what,
               rx__http_reply_message(reply)[0] != '\0' ? rx__http_reply_message(reply)
                                                        : "the daemon refused the request",
               reply->status, name != NULL ? ", " : "", name != NULL ? name : "");
    return err_from_name(name, fallback);
}

/* A reply that is 2xx but not what the protocol says. */
static rx_err
bad_answer(rx_context *ctx, const char *what)
{
    set_errmsg(ctx, "%s: the daemon's answer does not follow the protocol", what);
    return RX_ECONTEXT;
}

static int
get_size(const json_t *obj, const char *key, size_t *out)
{
    json_t *v = json_object_get(obj, key);
    json_int_t n;

    if (!json_is_integer(v))
        return -1;
    n = json_integer_value(v);
    if (n < 0)
        return -1;
    *out = (size_t)n;
    return 0;
}

/* The job object's fields this file needs. */
typedef struct job_info {
    int64_t id;
    rx_job_status status;
    rx_job_progress progress;
    int console_output;
} job_info;

static int
parse_job(const json_t *obj, job_info *out)
{
    const json_t *tasks;
    json_t *v;
    job_info info;

    memset(&info, 0, sizeof(info));
    if (!json_is_object(obj))
        return -1;
    v = json_object_get(obj, "id");
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return -1;
    info.id = (int64_t)json_integer_value(v);
    if (rx_job_status_parse(json_string_value(json_object_get(obj, "status")), &info.status) !=
        RX_OK)
        return -1;
    if (get_size(obj, "n_tasks", &info.progress.n_tasks) != 0)
        return -1;
    tasks = json_object_get(obj, "tasks");
    if (json_is_object(tasks)) {
        if (get_size(tasks, "pending", &info.progress.pending) != 0 ||
            get_size(tasks, "running", &info.progress.running) != 0 ||
            get_size(tasks, "ok", &info.progress.ok) != 0 ||
            get_size(tasks, "failed", &info.progress.failed) != 0)
            return -1;
    }
    /* json_number_value is 0 for null (not over yet) and for a missing field (unknown). */
    info.progress.created_s = json_number_value(json_object_get(obj, "created_s"));
    info.progress.ended_s = json_number_value(json_object_get(obj, "ended_s"));
    info.console_output = json_is_true(json_object_get(obj, "console_output"));
    *out = info;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * rx_exec: submit (POST /v1/jobs)
 * ------------------------------------------------------------------------------------------- */

/* 1 if entry ("NAME=value") names the variable whose name is name_len bytes at name. */
static int
env_names(const char *entry, const char *name, size_t name_len)
{
    return strncmp(entry, name, name_len) == 0 && entry[name_len] == '=';
}

/* RXJOB_* variables describe the caller (its daemon, or its own task when a job is started from
 * inside one); the daemon sets the task's own. They are never carried over. */
static int
env_is_rxjob(const char *entry)
{
    return strncmp(entry, "RXJOB_", 6) == 0;
}

/* 1 if work_env (NULL-terminated, may be NULL) sets the variable of entry. */
static int
env_overridden(const char *entry, const char *const *work_env)
{
    const char *eq = strchr(entry, '=');

    if (eq == NULL)
        return 1; /* not NAME=value: leave it out */
    for (size_t i = 0; work_env != NULL && work_env[i] != NULL; i++) {
        if (env_names(work_env[i], entry, (size_t)(eq - entry)))
            return 1;
    }
    return 0;
}

static int
append_b64(json_t *array, const void *data, size_t len)
{
    json_t *s = b64_json(data, len);

    return s != NULL && json_array_append_new(array, s) == 0 ? 0 : -1;
}

static int
set_b64(json_t *obj, const char *key, const void *data, size_t len)
{
    json_t *s = b64_json(data, len);

    return s != NULL && json_object_set_new(obj, key, s) == 0 ? 0 : -1;
}

/* One entry of the task environment, borrowed from environ or the work. */
typedef struct env_entry {
    const char *p;
    size_t len;
} env_entry;

/* The task environment: the caller's (without RXJOB_* variables), then work_env. *out is
 * rx__malloc'd (NULL when empty); *out_text_len the bytes of its JSON array's inside, each entry
 * as "base64" and commas between. 0; -1 (ENOMEM, or an entry over B64_MAX_BYTES). */
static int
env_collect(const char *const *work_env, env_entry **out, size_t *out_n, size_t *out_text_len)
{
    size_t n = 0, k = 0, text_len = 0;
    env_entry *v;

    for (char **e = environ; e != NULL && *e != NULL; e++)
        n++;
    for (size_t i = 0; work_env != NULL && work_env[i] != NULL; i++)
        n++;
    v = rx__malloc((n > 0 ? n : 1) * sizeof(*v));
    if (v == NULL)
        return -1;
    for (char **e = environ; e != NULL && *e != NULL && k < n; e++) {
        if (env_is_rxjob(*e) || env_overridden(*e, work_env))
            continue;
        v[k].p = *e;
        v[k++].len = strlen(*e);
    }
    for (size_t i = 0; work_env != NULL && work_env[i] != NULL && k < n; i++) {
        v[k].p = work_env[i];
        v[k++].len = strlen(work_env[i]);
    }
    for (size_t i = 0; i < k; i++) {
        if (v[i].len > B64_MAX_BYTES) {
            rx__free(v);
            return -1;
        }
        text_len += (i > 0 ? 1 : 0) + 2 + (v[i].len + 2) / 3 * 4;
    }
    *out = v;
    *out_n = k;
    *out_text_len = text_len;
    return 0;
}

/*
 * The submit body as text: {"work":{WORK,"env_b64":[ENV]},REST}, where WORK and REST are work's
 * and body's own members (body without "work") as jansson encodes them, and ENV the task
 * environment, written here without jansson: it is most of the bytes of a submission, and
 * base64 needs no JSON escaping. *out_text is rx__malloc'd. RX_OK; RX_ENOMEM.
 */
static rx_err
encode_submit(json_t *body, json_t *work, const char *const *work_env, char **out_text,
              size_t *out_len)
{
    static const char head[] = "{\"work\":{", env_key[] = "\"env_b64\":[";
    char *work_txt = NULL, *rest_txt = NULL, *text = NULL, *q;
    size_t work_len, rest_len, env_len = 0, n_env = 0, len;
    env_entry *env = NULL;
    rx_err err = RX_ENOMEM;

    if (json_object_del(body, "work") != 0)
        goto done;
    work_txt = json_dumps(work, JSON_COMPACT | JSON_EMBED);
    rest_txt = json_dumps(body, JSON_COMPACT | JSON_EMBED);
    if (work_txt == NULL || rest_txt == NULL || env_collect(work_env, &env, &n_env, &env_len) != 0)
        goto done;
    work_len = strlen(work_txt);
    rest_len = strlen(rest_txt);
    len = sizeof(head) - 1 + work_len + 1 + sizeof(env_key) - 1 + env_len + 2 + 1 + rest_len + 1;
    text = rx__malloc(len + 1); /* + 1: EVP_EncodeBlock's NUL after the last entry */
    if (text == NULL)
        goto done;
    q = text;
    memcpy(q, head, sizeof(head) - 1);
    q += sizeof(head) - 1;
    memcpy(q, work_txt, work_len);
    q += work_len;
    if (work_len > 0)
        *q++ = ',';
    memcpy(q, env_key, sizeof(env_key) - 1);
    q += sizeof(env_key) - 1;
    for (size_t i = 0; i < n_env; i++) {
        if (i > 0)
            *q++ = ',';
        *q++ = '"';
        /* Writes a NUL after the base64, which the closing quote replaces. */
        q += rx__crypto(NULL)->encode_block((unsigned char *)q, (const unsigned char *)env[i].p,
                                            (int)env[i].len);
        *q++ = '"';
    }
    *q++ = ']';
    *q++ = '}';
    if (rest_len > 0) {
        *q++ = ',';
        memcpy(q, rest_txt, rest_len);
        q += rest_len;
    }
    *q++ = '}';
    *q = '\0';
    *out_text = text;
    *out_len = (size_t)(q - text);
    text = NULL;
    err = RX_OK;
done:
    rx__free(text);
    rx__free(env);
    free(work_txt); /* jansson allocates with malloc */
    free(rest_txt);
    return err;
}

/* The submit body of protocol.md, as text (rx__malloc'd). RX_OK; RX_EINVAL (errmsg set);
 * RX_ENOMEM; RX_ESYSTEM. */
static rx_err
build_submit(rx_context *ctx, const rx__exec_call *call, char **out_text, size_t *out_len)
{
    const rx_work *w = call->work;
    const rx_exec_opts *opts = call->opts;
    json_t *body = json_object();
    json_t *work = json_object();
    char dir[PATH_MAX];
    int console_output;
    rx_err err = RX_ENOMEM;

    if (body == NULL || work == NULL)
        goto fail;
    err = b64_ready(ctx, "rx_exec");
    if (err != RX_OK)
        goto fail;
    err = RX_ENOMEM;
    if (json_object_set(body, "work", work) != 0)
        goto fail;
    if (w->kind == RX_WORK_FUNCTION) {
        const char *name = w->name;
        char exe[PATH_MAX];

        if (name != NULL && (!rx__function_name_ok(name) || rx__registry_find(name) == NULL)) {
            set_errmsg(ctx,
                       "rx_exec: no function is registered as '%s': define it with "
                       "RX_FUNCTION, and call rx_init first thing in main",
                       name);
            err = RX_EINVAL;
            goto fail;
        }
        if (name == NULL)
            name = rx__registry_name_of(w->function);
        if (name == NULL) {
            set_errmsg(ctx, "rx_exec: the function is not registered: a server context runs it "
                            "in another process, so define it with RX_FUNCTION(name) and call "
                            "rx_init first thing in main");
            err = RX_EINVAL;
            goto fail;
        }
        if (realpath("/proc/self/exe", exe) == NULL) {
            set_errmsg(ctx, "rx_exec: cannot find the running program (/proc/self/exe): %s",
                       strerror(errno));
            err = RX_ESYSTEM;
            goto fail;
        }
        if (json_object_set_new(work, "kind", json_string("function")) != 0 ||
            set_b64(work, "exe_b64", exe, strlen(exe)) != 0 ||
            json_object_set_new(work, "name", json_string(name)) != 0)
            goto fail;
    } else {
        json_t *argv = json_array();

        if (argv == NULL || json_object_set_new(work, "argv_b64", argv) != 0 ||
            json_object_set_new(work, "kind", json_string("command")) != 0)
            goto fail;
        for (size_t i = 0; w->argv[i] != NULL; i++) {
            if (append_b64(argv, w->argv[i], strlen(w->argv[i])) != 0)
                goto fail;
        }
        if (w->stdin_data != NULL && set_b64(work, "stdin_b64", w->stdin_data, w->stdin_len) != 0)
            goto fail;
    }
    /* The daemon runs in its own directory: send an absolute one (the caller's by default). */
    if (w->kind == RX_WORK_COMMAND && w->cwd != NULL) {
        if (realpath(w->cwd, dir) == NULL) {
            set_errmsg(ctx, "rx_exec: working directory '%s': %s", w->cwd, strerror(errno));
            err = RX_EINVAL;
            goto fail;
        }
    } else if (getcwd(dir, sizeof(dir)) == NULL) {
        /* Removed, or too long to name: the task would run somewhere else (the daemon's
         * directory), which for a command like `rm -r *` is not a detail. */
        set_errmsg(ctx,
                   "rx_exec: the current directory cannot be the job's working directory (%s%s): "
                   "change to an existing directory, or give the work a cwd",
                   strerror(errno), errno == ENOENT ? ": it was removed" : "");
        err = RX_EINVAL;
        goto fail;
    }
    if (set_b64(work, "cwd_b64", dir, strlen(dir)) != 0)
        goto fail;

    if (opts->elem_args != NULL) {
        json_t *args = json_array();

        if (args == NULL || json_object_set_new(body, "elem_args_b64", args) != 0)
            goto fail;
        for (size_t i = 0; i < opts->n_elem_args; i++) {
            const rx_buf *a = &opts->elem_args[i];

            if (append_b64(args, a->len > 0 ? a->data : "", a->len) != 0)
                goto fail;
        }
    }
    console_output =
        opts->console_output == RX_INHERIT ? ctx->console_output : opts->console_output == RX_TRUE;
    if (json_object_set_new(body, "times_to_run", json_integer((json_int_t)call->n_tasks)) != 0 ||
        json_object_set_new(body, "num_tasks", json_integer((json_int_t)opts->num_tasks)) != 0 ||
        json_object_set_new(body, "continue_on_failure",
                            json_boolean(opts->continue_on_failure != RX_FALSE)) != 0 ||
        json_object_set_new(body, "execution_timeout_s", json_real(opts->execution_timeout_s)) !=
            0 ||
        json_object_set_new(body, "console_output", json_boolean(console_output)) != 0 ||
        json_object_set_new(body, "auto_cleanup", json_boolean(ctx->auto_cleanup)) != 0)
        goto fail;
    /* Sent only when set, so that a daemon older than the field still takes the default. */
    if (opts->task_chunk_size > 0 &&
        json_object_set_new(body, "task_chunk_size",
                            json_integer((json_int_t)opts->task_chunk_size)) != 0)
        goto fail;
    err = encode_submit(body, work, w->kind == RX_WORK_COMMAND ? w->env : NULL, out_text, out_len);
    if (err != RX_OK)
        goto fail;
    json_decref(work);
    json_decref(body);
    return RX_OK;

fail:
    if (err == RX_ENOMEM)
        set_errmsg(ctx, "rx_exec: out of memory building the request");
    json_decref(work);
    json_decref(body);
    return err;
}

static rx_err server_wait(rx_job *job, double timeout_s);
static rx_err server_results(rx_job *job, rx_tristate console_output, rx_tristate auto_cleanup,
                             rx_results **out_results);

static rx_err
server_exec(rx_context *ctx, rx__exec_call *call, rx_results **out_results, rx_job **out_job)
{
    rx__http_reply reply = {0};
    char *body = NULL;
    size_t body_len = 0;
    rx_job *job = NULL;
    rx_results *res = NULL;
    job_info info;
    rx_err err;

    err = build_submit(ctx, call, &body, &body_len);
    if (err != RX_OK)
        return err;
    err = request(ctx, 1, "POST", "/v1/jobs", body, body_len, 0, &reply);
    rx__free(body);
    if (err != RX_OK)
        goto done;
    if (reply.status != 201 && reply.status != 200) {
        err = reply_error(ctx, "rx_exec: submit", &reply);
        goto done;
    }
    if (parse_job(reply.body, &info) != 0) {
        err = bad_answer(ctx, "rx_exec: submit");
        goto done;
    }
    err = rx__job_new(ctx, info.id, &job);
    if (err != RX_OK)
        goto done;
    if (!ctx->wait) {
        *out_job = job;
        job = NULL;
        goto done;
    }

    /* A waiting context: run the job to its end, then collect it as rx_get_job_results would,
     * with the context's auto_cleanup (the job carries it, and its console_output). */
    err = server_wait(job, -1.0);
    if (err == RX_OK)
        err = server_results(job, RX_INHERIT, RX_INHERIT, &res);
    if (err != RX_OK && err != RX_EJOBFAILED) {
        /* The job exists but the caller has no handle on it: say which one it is. */
        char why[sizeof(ctx->errmsg)];

        (void)snprintf(why, sizeof(why), "%s", ctx->errmsg);
        set_errmsg(ctx, "rx_exec: job %" PRId64 " was submitted, then: %s", job->id, why);
        goto done;
    }
    if (call->opts->callback != NULL) {
        for (size_t i = 0; i < res->n; i++)
            call->opts->callback(res, i, call->opts->callback_user);
    }
    *out_results = res;
done:
    rx__http_reply_clear(&reply);
    rx_job_free(job);
    return err;
}

/* ---------------------------------------------------------------------------------------------
 * The job operations
 * ------------------------------------------------------------------------------------------- */

/* GET /v1/jobs/{id}: RX_OK; RX_ENOENT (unknown or gone); RX_ECONTEXT; ... */
static rx_err
get_job_info(rx_job *job, job_info *out_info)
{
    rx__http_reply reply = {0};
    char path[128];
    job_info info;
    rx_err err;

    (void)snprintf(path, sizeof(path), "/v1/jobs/%" PRId64, job->id);
    err = request(job->ctx, 0, "GET", path, NULL, 0, 0, &reply);
    if (err != RX_OK)
        return err;
    if (reply.status == 200) {
        if (parse_job(reply.body, &info) != 0)
            err = bad_answer(job->ctx, "status");
    } else {
        err = reply_error(job->ctx, "status", &reply);
    }
    rx__http_reply_clear(&reply);
    if (err != RX_OK)
        return err;
    *out_info = info;
    return RX_OK;
}

static rx_err
server_get(rx_job *job, rx_job_status *out_status, rx_job_progress *out_progress)
{
    job_info info;
    rx_err err = get_job_info(job, &info);

    if (err != RX_OK)
        return err;
    *out_status = info.status;
    *out_progress = info.progress;
    return RX_OK;
}

static rx_err
server_wait(rx_job *job, double timeout_s)
{
    int forever = timeout_s < 0 || timeout_s > RX_MAX_TIMEOUT_S;
    int64_t deadline = forever ? 0 : rx__now_ms() + (int64_t)ceil(timeout_s * 1000.0);
    rx_err err = RX_OK;

    for (;;) {
        rx__http_reply reply = {0};
        double poll_s = WAIT_POLL_MAX_S;
        char path[128];
        job_info info;

        if (!forever) {
            int64_t left_ms = deadline - rx__now_ms();

            if (left_ms < 0)
                left_ms = 0;
            if ((double)left_ms / 1000.0 < poll_s)
                poll_s = (double)left_ms / 1000.0;
        }
        (void)snprintf(path, sizeof(path), "/v1/jobs/%" PRId64 "/wait?timeout_s=%.3f", job->id,
                       poll_s);
        err = request(job->ctx, 0, "GET", path, NULL, 0, (long)(poll_s * 1000.0) + WAIT_SLACK_MS,
                      &reply);
        if (err != RX_OK)
            return err;
        if (reply.status == 404) {
            rx__http_reply_clear(&reply);
            return RX_OK; /* unknown or gone: UNDETERMINED, which is over */
        }
        if (reply.status != 200)
            err = reply_error(job->ctx, "wait", &reply);
        else if (parse_job(reply.body, &info) != 0)
            err = bad_answer(job->ctx, "wait");
        rx__http_reply_clear(&reply);
        if (err != RX_OK)
            return err;
        if (rx_job_status_is_terminal(info.status))
            return RX_OK;
        if (!forever && rx__now_ms() >= deadline) {
            set_errmsg(job->ctx, "wait: job %" PRId64 " is still %s after %g s", job->id,
                       rx_job_status_name(info.status), timeout_s);
            return RX_ETIMEDOUT;
        }
    }
}

static rx_err
server_cancel(rx_job *job, int *out_canceled)
{
    rx__http_reply reply = {0};
    char path[128];
    json_t *v;
    rx_err err;

    (void)snprintf(path, sizeof(path), "/v1/jobs/%" PRId64 "/cancel", job->id);
    err = request(job->ctx, 0, "POST", path, NULL, 0, 0, &reply);
    if (err != RX_OK)
        return err;
    if (reply.status == 404) {
        *out_canceled = 0; /* unknown or gone: nothing to cancel, nothing changed */
    } else if (reply.status != 200) {
        err = reply_error(job->ctx, "cancel", &reply);
    } else {
        v = json_is_object(reply.body) ? json_object_get(reply.body, "canceled") : NULL;
        if (!json_is_boolean(v))
            err = bad_answer(job->ctx, "cancel");
        else
            *out_canceled = json_is_true(v);
    }
    rx__http_reply_clear(&reply);
    return err;
}

/* Write the job's console output to out (GET /output); 404 writes nothing. */
static rx_err
server_output(rx_job *job, FILE *out)
{
    server_impl *impl = impl_of(job->ctx);
    rx__http_reply reply = {0};
    char path[128];
    char why[400];
    rx_err err;

    (void)snprintf(path, sizeof(path), "/v1/jobs/%" PRId64 "/output", job->id);
    err = rx__http_stream(impl->http, path, out, &reply, NULL, why, sizeof(why));
    if (err != RX_OK) {
        set_errmsg(job->ctx, "output: %s", why);
        return err;
    }
    if (reply.status != 200 && reply.status != 404)
        err = reply_error(job->ctx, "output", &reply);
    rx__http_reply_clear(&reply);
    if (err == RX_OK && fflush(out) != 0) {
        set_errmsg(job->ctx, "output: writing failed: %s", strerror(errno));
        err = RX_EIO;
    }
    return err;
}

/* The task state named name ("OK", "EXIT", ...), or -1. */
static int
task_state_from_name(const char *name)
{
    for (int s = 0; name != NULL && s < RX_TASK_STATE_COUNT; s++) {
        if (strcmp(rx_task_state_name((rx_task_state)s), name) == 0)
            return s;
    }
    return -1;
}

/* One slot of the results body into slot. RX_OK; RX_EINVAL (malformed); RX_ENOMEM. */
static rx_err
parse_slot(const json_t *obj, rx__slot *slot)
{
    const char *error;
    json_t *v;
    int state;

    if (!json_is_object(obj))
        return RX_EINVAL;
    state = task_state_from_name(json_string_value(json_object_get(obj, "state")));
    if (state < 0)
        return RX_EINVAL;
    slot->state = (rx_task_state)state;
    v = json_object_get(obj, "exit_status");
    if (json_is_integer(v))
        slot->exit_status = (int)json_integer_value(v);
    v = json_object_get(obj, "signal");
    if (json_is_integer(v))
        slot->signal = (int)json_integer_value(v);
    v = json_object_get(obj, "elapsed_s");
    if (json_is_number(v) && json_number_value(v) > 0) {
        /* Slots keep monotonic ms; from the server only the duration is known, so the start
         * is a nominal 1 ms (0 would mean "never started"). */
        slot->start_ms = 1;
        slot->end_ms = 1 + (int64_t)(json_number_value(v) * 1000.0 + 0.5);
    }
    if (slot->state == RX_TASK_OK) {
        v = json_object_get(obj, "value_b64");
        if (v != NULL) {
            rx_err err = b64_decode(v, &slot->value, &slot->value_len);

            if (err != RX_OK)
                return err;
        }
        return RX_OK;
    }
    error = json_string_value(json_object_get(obj, "error"));
    if (error != NULL) {
        slot->error = rx__strdup(error);
        if (slot->error == NULL)
            return RX_ENOMEM;
    }
    return RX_OK;
}

/* The results body ({"job": ..., "slots": [...]}) into new rx_results. */
static rx_err
parse_results(const json_t *body, job_info *out_info, rx_results **out_results)
{
    const json_t *slots;
    rx_results *res;
    job_info info;
    size_t n;

    if (!json_is_object(body) || parse_job(json_object_get(body, "job"), &info) != 0)
        return RX_EINVAL;
    slots = json_object_get(body, "slots");
    if (!json_is_array(slots))
        return RX_EINVAL;
    n = json_array_size(slots);
    res = rx__results_new(n);
    if (res == NULL)
        return RX_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        rx_err err = parse_slot(json_array_get(slots, i), &res->slots[i]);

        if (err != RX_OK) {
            rx_results_free(res);
            return err;
        }
    }
    rx__results_settle(res); /* status.c decides FINISHED or FAILED from the slots */
    *out_info = info;
    *out_results = res;
    return RX_OK;
}

static rx_err
server_results(rx_job *job, rx_tristate console_output, rx_tristate auto_cleanup,
               rx_results **out_results)
{
    rx__http_reply reply = {0};
    rx_results *res = NULL;
    char path[128];
    job_info info;
    rx_err err;

    /* The output goes first: collecting with auto-cleanup removes it. Only a job whose results
     * are there to collect shows it. */
    if (console_output != RX_FALSE) {
        err = get_job_info(job, &info);
        if (err == RX_ENOENT) {
            set_errmsg(job->ctx,
                       "results: job %" PRId64 " is gone (collected or cleaned up) or "
                       "was never known",
                       job->id);
            return RX_ENORESULTS;
        }
        if (err != RX_OK)
            return err;
        if (info.status == RX_JOB_QUEUED || info.status == RX_JOB_RUNNING) {
            set_errmsg(job->ctx, "results: job %" PRId64 " is %s", job->id,
                       rx_job_status_name(info.status));
            return RX_ENOTFINISHED;
        }
        if (info.status == RX_JOB_CANCELED) {
            set_errmsg(job->ctx, "results: job %" PRId64 " was canceled", job->id);
            return RX_ECANCELED;
        }
        if (console_output == RX_TRUE || info.console_output) {
            err = server_output(job, stdout);
            if (err != RX_OK)
                return err;
        }
    }

    /* Before the request: collecting may clean the job up, and its values are base64. */
    err = b64_ready(job->ctx, "results");
    if (err != RX_OK)
        return err;
    if (auto_cleanup == RX_INHERIT)
        (void)snprintf(path, sizeof(path), "/v1/jobs/%" PRId64 "/results", job->id);
    else
        (void)snprintf(path, sizeof(path), "/v1/jobs/%" PRId64 "/results?auto_cleanup=%d", job->id,
                       auto_cleanup == RX_TRUE);
    err = request(job->ctx, 0, "GET", path, NULL, 0, 0, &reply);
    if (err != RX_OK)
        return err;
    if (reply.status == 404) {
        set_errmsg(job->ctx,
                   "results: job %" PRId64 " is gone (collected or cleaned up) or was "
                   "never known",
                   job->id);
        err = RX_ENORESULTS;
    } else if (reply.status == 409) {
        err = reply_error(job->ctx, "results", &reply);
        if (err != RX_ECANCELED)
            err = RX_ENOTFINISHED;
    } else if (reply.status != 200) {
        err = reply_error(job->ctx, "results", &reply);
        if (err == RX_ENOENT)
            err = RX_ENORESULTS;
    } else {
        err = parse_results(reply.body, &info, &res);
        if (err == RX_EINVAL)
            err = bad_answer(job->ctx, "results");
        else if (err == RX_ENOMEM)
            set_errmsg(job->ctx, "results: out of memory");
    }
    rx__http_reply_clear(&reply);
    if (err != RX_OK)
        return err;
    if (res->status == RX_JOB_FAILED) {
        rx__log(RX_LOG_WARN, "collecting results of job %" PRId64 ": %zu of %zu tasks failed",
                job->id, rx_results_failed(res), res->n);
        set_errmsg(job->ctx, "results: job %" PRId64 " failed: %zu of %zu tasks failed", job->id,
                   rx_results_failed(res), res->n);
        err = RX_EJOBFAILED;
    }
    *out_results = res;
    return err;
}

static rx_err
server_cleanup(rx_job *job, int force, int *out_cleaned)
{
    rx__http_reply reply = {0};
    char path[128];
    json_t *v;
    rx_err err;

    (void)snprintf(path, sizeof(path), "/v1/jobs/%" PRId64 "?force=%d", job->id, force != 0);
    err = request(job->ctx, 0, "DELETE", path, NULL, 0, 0, &reply);
    if (err != RX_OK)
        return err;
    if (reply.status == 404) {
        *out_cleaned = 0; /* UNDETERMINED: a silent no-op */
    } else if (reply.status != 200) {
        err = reply_error(job->ctx, "cleanup", &reply);
    } else {
        v = json_is_object(reply.body) ? json_object_get(reply.body, "cleaned") : NULL;
        if (!json_is_boolean(v)) {
            err = bad_answer(job->ctx, "cleanup");
        } else {
            const char *warning = json_string_value(json_object_get(reply.body, "warning"));

            *out_cleaned = json_is_true(v);
            if (!*out_cleaned)
                rx__log(RX_LOG_WARN, "cleanup: job %" PRId64 " kept: %s", job->id,
                        warning != NULL ? warning
                                        : "it is FINISHED (cleaning it up would delete its "
                                          "results) or still running: use force, or "
                                          "rx_get_job_results");
        }
    }
    rx__http_reply_clear(&reply);
    return err;
}

static rx_err
server_list(rx_context *ctx, const rx_job_filter *filter, int64_t **out_ids, size_t *out_n)
{
    rx__http_reply reply = {0};
    char path[512];
    size_t used;
    const json_t *jobs;
    int64_t *ids = NULL;
    size_t n = 0;
    unsigned listed = filter->states & ~(1u << RX_JOB_UNDETERMINED);
    rx_err err;

    /* A job whose artifacts are gone is never listed: asking for UNDETERMINED alone finds
     * nothing, and needs no daemon. */
    if (filter->states != 0 && listed == 0) {
        *out_ids = NULL;
        *out_n = 0;
        return RX_OK;
    }
    used = (size_t)snprintf(path, sizeof(path), "/v1/jobs");
    if (listed != 0) {
        const char *sep = "?state=";

        for (int s = 0; s < RX_JOB_STATUS_COUNT; s++) {
            if ((listed & (1u << s)) == 0)
                continue;
            used += (size_t)snprintf(path + used, sizeof(path) - used, "%s%s", sep,
                                     rx_job_status_name((rx_job_status)s));
            sep = ",";
        }
    }
    if (filter->since_s > 0)
        used += (size_t)snprintf(path + used, sizeof(path) - used, "%ssince_s=%.3f",
                                 strchr(path, '?') ? "&" : "?", filter->since_s);
    if (filter->until_s > 0)
        used += (size_t)snprintf(path + used, sizeof(path) - used, "%suntil_s=%.3f",
                                 strchr(path, '?') ? "&" : "?", filter->until_s);
    (void)used;

    err = request(ctx, 1, "GET", path, NULL, 0, 0, &reply);
    if (err != RX_OK)
        return err;
    if (reply.status != 200) {
        err = reply_error(ctx, "list", &reply);
        goto done;
    }
    jobs = json_is_object(reply.body) ? json_object_get(reply.body, "jobs") : NULL;
    if (!json_is_array(jobs)) {
        err = bad_answer(ctx, "list");
        goto done;
    }
    if (json_array_size(jobs) > 0) {
        ids = rx__calloc(json_array_size(jobs), sizeof(*ids));
        if (ids == NULL) {
            err = RX_ENOMEM;
            goto done;
        }
    }
    for (size_t i = 0; i < json_array_size(jobs); i++) {
        job_info info;

        if (parse_job(json_array_get(jobs, i), &info) != 0) {
            err = bad_answer(ctx, "list");
            goto done;
        }
        ids[n++] = info.id;
    }
    *out_ids = ids;
    *out_n = n;
    ids = NULL;
done:
    rx__free(ids);
    rx__http_reply_clear(&reply);
    return err;
}

static const rx__job_ops server_job_ops = {
    .get = server_get,
    .wait = server_wait,
    .cancel = server_cancel,
    .results = server_results,
    .output = server_output,
    .cleanup = server_cleanup,
    .list = server_list,
};

/* ---------------------------------------------------------------------------------------------
 * The context
 * ------------------------------------------------------------------------------------------- */

static size_t
server_default_count(const rx_context *ctx, const rx_exec_opts *opts)
{
    (void)ctx;
    return opts->num_tasks > 0 ? opts->num_tasks : 1; /* DESIGN.md section 2 */
}

static void
server_destroy(rx_context *ctx)
{
    server_impl *impl = impl_of(ctx);

    if (impl == NULL)
        return;
    rx__http_free(impl->http);
    (void)pthread_mutex_destroy(&impl->lock);
    rx__free(impl);
    ctx->impl = NULL;
}

static const rx__context_ops server_ops = {
    .name = "server",
    .default_count = server_default_count,
    .exec = server_exec,
    .destroy = server_destroy,
};

const rx__job_ops *
rx__server_job_ops(const rx_context *ctx)
{
    return ctx != NULL && ctx->ops == &server_ops ? &server_job_ops : NULL;
}

rx_err
rx_server_context(const char *url, rx_context **out_ctx)
{
    char why[400] = "";
    rx_context *ctx = NULL;
    server_impl *impl = NULL;
    int lock_ok = 0;
    rx_err err;

    if (out_ctx == NULL)
        return RX_EINVAL;
    impl = rx__calloc(1, sizeof(*impl));
    if (impl == NULL)
        return RX_ENOMEM;
    if (pthread_mutex_init(&impl->lock, NULL) != 0) {
        err = RX_ENOMEM;
        goto fail;
    }
    lock_ok = 1;
    /* The url, and for https the token and CA: there is no context yet to hold why it failed. */
    err = rx__http_open(url, &impl->http, why, sizeof(why));
    if (err != RX_OK) {
        rx__log(RX_LOG_ERROR, "server context: %s", why);
        goto fail;
    }
    impl->unix_url = url != NULL && rx__http_socket(impl->http) != NULL;
    /* Only the per-user daemon is ever started by the library (never one behind a url). */
    if (url == NULL) {
        const char *sock = rx__http_socket(impl->http);

        /* $RXJOB_SOCKET may name the system daemon's socket: that one only root starts. */
        impl->may_start = sock != NULL && strncmp(sock, RX__SYSTEM_SOCKET_DIR,
                                                  sizeof(RX__SYSTEM_SOCKET_DIR) - 1) != 0;
        if (rx__daemon_state_dir(impl->state_dir, sizeof(impl->state_dir)) != RX_OK)
            impl->state_dir[0] = '\0'; /* reported if the daemon has to be started */
    }
    /* No daemon knows how many tasks it will run at once until asked: 0 says "its slots". */
    ctx = rx__context_new(&server_ops, 0);
    if (ctx == NULL) {
        err = RX_ENOMEM;
        goto fail;
    }
    ctx->impl = impl;
    ctx->wait = 0; /* revoscalepy's remote contexts: rx_exec hands back a job */
    *out_ctx = ctx;
    return RX_OK;

fail:
    if (impl != NULL) {
        rx__http_free(impl->http);
        if (lock_ok)
            (void)pthread_mutex_destroy(&impl->lock);
        rx__free(impl);
    }
    return err;
}
