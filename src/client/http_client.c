/*
 * http_client.c - HTTP/1.1 over rxjobd's Unix socket with libcurl; JSON in and out with jansson.
 *
 * Each request takes an easy handle from the client's small stack of idle ones (or makes one)
 * and gives it back afterwards, options and live connection kept: no curl_easy_reset, so every
 * request sets each option it depends on (method, body, headers, write callback, timeout); the
 * header lists are built once per client. A caller on one thread thus reuses one handle and one
 * keep-alive connection for every request; threads that overlap get a handle each. JSON answers are
 * read into memory (the protocol's bodies are bounded by what the daemon sends); console output is
 * streamed to the caller's FILE as it arrives, never held whole.
 */
#define _GNU_SOURCE /* struct ucred, SO_PEERCRED */
#include "client/http_client.h"

#include "core/internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Idle easy handles one client keeps for reuse. */
#define HTTP_IDLE_MAX 4

/* How long connecting to the socket may take, in milliseconds. */
#define HTTP_CONNECT_TIMEOUT_MS 5000L

/* Bytes of an error body kept while streaming (the rest is dropped). */
#define HTTP_ERROR_BODY_MAX (64 * 1024)

struct rx__http {
    char *socket_path;
    pthread_mutex_t lock; /* guards idle */
    CURL *idle[HTTP_IDLE_MAX];
    size_t n_idle;
    struct curl_slist *hdr_plain; /* "Expect:" (no 100-continue round trip) */
    struct curl_slist *hdr_json;  /* that and "Content-Type: application/json" */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_code = CURLE_FAILED_INIT;

static void
curl_init_once(void)
{
    curl_init_code = curl_global_init(CURL_GLOBAL_DEFAULT);
}

rx_err
rx__http_new(const char *socket_path, rx__http **out_http)
{
    rx__http *http;

    if (socket_path == NULL || out_http == NULL || socket_path[0] == '\0')
        return RX_EINVAL;
    if (strlen(socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return RX_EINVAL;
    (void)pthread_once(&curl_once, curl_init_once);
    if (curl_init_code != CURLE_OK)
        return RX_ENOMEM; /* curl_global_init fails only when it cannot allocate */
    http = rx__calloc(1, sizeof(*http));
    if (http == NULL)
        return RX_ENOMEM;
    http->socket_path = rx__strdup(socket_path);
    if (http->socket_path == NULL) {
        rx__free(http);
        return RX_ENOMEM;
    }
    if (pthread_mutex_init(&http->lock, NULL) != 0) {
        rx__free(http->socket_path);
        rx__free(http);
        return RX_ENOMEM;
    }
    http->hdr_plain = curl_slist_append(NULL, "Expect:");
    http->hdr_json = curl_slist_append(NULL, "Expect:");
    if (http->hdr_json != NULL &&
        curl_slist_append(http->hdr_json, "Content-Type: application/json") == NULL) {
        curl_slist_free_all(http->hdr_json);
        http->hdr_json = NULL;
    }
    if (http->hdr_plain == NULL || http->hdr_json == NULL) {
        rx__http_free(http);
        return RX_ENOMEM;
    }
    *out_http = http;
    return RX_OK;
}

void
rx__http_free(rx__http *http)
{
    if (http == NULL)
        return;
    for (size_t i = 0; i < http->n_idle; i++)
        curl_easy_cleanup(http->idle[i]);
    (void)pthread_mutex_destroy(&http->lock);
    curl_slist_free_all(http->hdr_plain);
    curl_slist_free_all(http->hdr_json);
    rx__free(http->socket_path);
    rx__free(http);
}

const char *
rx__http_socket(const rx__http *http)
{
    return http->socket_path;
}

void
rx__http_reply_clear(rx__http_reply *reply)
{
    if (reply == NULL)
        return;
    json_decref(reply->body);
    reply->body = NULL;
    reply->status = 0;
}

const char *
rx__http_reply_message(const rx__http_reply *reply)
{
    const char *msg;

    if (reply == NULL || !json_is_object(reply->body))
        return "";
    msg = json_string_value(json_object_get(reply->body, "message"));
    return msg != NULL ? msg : "";
}

/* An easy handle for one request: an idle one (its connection kept) or a new one. */
static CURL *
handle_take(rx__http *http)
{
    CURL *h = NULL;

    (void)pthread_mutex_lock(&http->lock);
    if (http->n_idle > 0)
        h = http->idle[--http->n_idle];
    (void)pthread_mutex_unlock(&http->lock);
    if (h == NULL)
        h = curl_easy_init();
    /* A reused handle keeps its options and its live connection: each request sets every
     * option it depends on. */
    return h;
}

static void
handle_give_back(rx__http *http, CURL *h)
{
    if (h == NULL)
        return;
    (void)pthread_mutex_lock(&http->lock);
    if (http->n_idle < HTTP_IDLE_MAX) {
        http->idle[http->n_idle++] = h;
        h = NULL;
    }
    (void)pthread_mutex_unlock(&http->lock);
    if (h != NULL)
        curl_easy_cleanup(h);
}

/* A growing buffer for a response body. */
typedef struct body_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* 0 = unbounded; else bytes past max are dropped */
    int nomem;
} body_buf;

static int
body_append(body_buf *b, const char *data, size_t len)
{
    if (b->max > 0 && b->len + len > b->max)
        len = b->len < b->max ? b->max - b->len : 0;
    if (len == 0)
        return 0;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *data_new;

        while (cap < b->len + len + 1) {
            if (cap > SIZE_MAX / 2)
                return -1;
            cap *= 2;
        }
        data_new = rx__realloc(b->data, cap);
        if (data_new == NULL)
            return -1;
        b->data = data_new;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

static size_t
write_to_buf(char *ptr, size_t size, size_t nmemb, void *user)
{
    body_buf *b = user;
    size_t len = size * nmemb;

    if (body_append(b, ptr, len) != 0) {
        b->nomem = 1;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    return len;
}

/* Where a streamed answer goes: out for a 200, the error buffer otherwise. */
typedef struct stream_sink {
    CURL *h;
    FILE *out;
    body_buf err;
    int decided;
    int is_ok;
    int io_error;
} stream_sink;

static size_t
write_to_stream(char *ptr, size_t size, size_t nmemb, void *user)
{
    stream_sink *s = user;
    size_t len = size * nmemb;

    if (!s->decided) {
        long code = 0;

        (void)curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
        s->is_ok = code == 200;
        s->decided = 1;
    }
    if (!s->is_ok)
        return write_to_buf(ptr, size, nmemb, &s->err);
    if (len > 0 && fwrite(ptr, 1, len, s->out) != len) {
        s->io_error = 1;
        return 0;
    }
    return len;
}

/*
 * Who answers on the socket: on each new connection, the peer's uid (SO_PEERCRED) must be ours
 * or root's, before a request is sent. Otherwise anyone who could put a socket at the path first
 * (a world-writable /tmp, a directory another user made) would receive our jobs, with their
 * argv and environment, and could forge every answer. libcurl opens the socket through
 * open_socket, which notes it (a request runs on one thread, in curl_easy_perform); once it is
 * connected and before the request is sent, check_peer checks the peer. A reused connection was
 * checked when it was new; one that failed is shut down, so it can never be reused.
 */
static _Thread_local curl_socket_t fresh_fd = CURL_SOCKET_BAD;

static curl_socket_t
open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
    curl_socket_t fd;

    (void)clientp;
    (void)purpose;
    fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    fresh_fd = fd < 0 ? CURL_SOCKET_BAD : fd;
    return fresh_fd;
}

static int
check_peer(void *clientp, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
           int conn_local_port)
{
    const rx__http *http = clientp;
    curl_socket_t fd = fresh_fd;
    struct ucred cred = {0};
    socklen_t len = sizeof(cred);

    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    fresh_fd = CURL_SOCKET_BAD;
    if (fd == CURL_SOCKET_BAD)
        return CURL_PREREQFUNC_OK; /* a reused connection, checked when it was new */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof(cred) &&
        (cred.uid == getuid() || cred.uid == 0))
        return CURL_PREREQFUNC_OK;
    rx__log(RX_LOG_ERROR,
            "http: the process on '%s' runs as uid %u, neither us (uid %u) nor root: refusing "
            "to talk to it",
            http->socket_path, (unsigned)cred.uid, (unsigned)getuid());
    (void)shutdown(fd, SHUT_RDWR);
    return CURL_PREREQFUNC_ABORT;
}

/* Options every request shares. */
static void
set_common(rx__http *http, CURL *h, const char *path, char *url, size_t url_len, char *curl_err)
{
    (void)snprintf(url, url_len, "http://localhost%s", path);
    (void)curl_easy_setopt(h, CURLOPT_URL, url);
    (void)curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, http->socket_path);
    (void)curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    (void)curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, HTTP_CONNECT_TIMEOUT_MS);
    (void)curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    (void)curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    (void)curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    (void)curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, check_peer);
    (void)curl_easy_setopt(h, CURLOPT_PREREQDATA, http);
    /* Never a proxy: and no look at the proxy environment variables on every request. */
    (void)curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    fresh_fd = CURL_SOCKET_BAD;
    curl_err[0] = '\0';
}

/* Map a failed transfer to RX_ECONTEXT with a reason, and the connect errno when it never
 * connected. */
static rx_err
transfer_failed(rx__http *http, CURL *h, CURLcode code, const char *curl_err, int *out_conn_errno,
                char *errbuf, size_t errlen)
{
    long os_errno = 0;
    int conn_errno = 0;

    if (code == CURLE_COULDNT_CONNECT) {
        (void)curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
        conn_errno = os_errno != 0 ? (int)os_errno : ECONNREFUSED;
        (void)snprintf(errbuf, errlen, "connect to rxjobd at '%s' failed: %s", http->socket_path,
                       strerror(conn_errno));
    } else if (code == CURLE_ABORTED_BY_CALLBACK) {
        (void)snprintf(errbuf, errlen,
                       "refused to talk to '%s': the process listening there runs as another "
                       "user (not this user, not root)",
                       http->socket_path);
    } else {
        (void)snprintf(errbuf, errlen, "request to rxjobd at '%s' failed: %s", http->socket_path,
                       curl_err[0] != '\0' ? curl_err : curl_easy_strerror(code));
    }
    if (out_conn_errno != NULL)
        *out_conn_errno = conn_errno;
    return RX_ECONTEXT;
}

rx_err
rx__http_json(rx__http *http, const char *method, const char *path, const json_t *body,
              long timeout_ms, rx__http_reply *out_reply, int *out_conn_errno, char *errbuf,
              size_t errlen)
{
    char *req = NULL;
    rx_err err;

    if (body != NULL) {
        req = json_dumps(body, JSON_COMPACT);
        if (req == NULL) {
            if (out_conn_errno != NULL)
                *out_conn_errno = 0;
            (void)snprintf(errbuf, errlen, "http: out of memory encoding a request");
            return RX_ENOMEM;
        }
    }
    err = rx__http_text(http, method, path, req, req != NULL ? strlen(req) : 0, timeout_ms,
                        out_reply, out_conn_errno, errbuf, errlen);
    free(req); /* jansson allocates with malloc */
    return err;
}

rx_err
rx__http_text(rx__http *http, const char *method, const char *path, const char *req, size_t req_len,
              long timeout_ms, rx__http_reply *out_reply, int *out_conn_errno, char *errbuf,
              size_t errlen)
{
    char curl_err[CURL_ERROR_SIZE];
    char url[1024];
    body_buf resp = {0};
    CURL *h = NULL;
    CURLcode code;
    long status = 0;
    rx_err err = RX_OK;

    if (out_conn_errno != NULL)
        *out_conn_errno = 0;
    h = handle_take(http);
    if (h == NULL) {
        (void)snprintf(errbuf, errlen, "http: curl_easy_init failed");
        err = RX_ENOMEM;
        goto done;
    }
    set_common(http, h, path, url, sizeof(url), curl_err);
    /* "Expect:" turns off curl's 100-continue round trip for large bodies. */
    (void)curl_easy_setopt(h, CURLOPT_HTTPHEADER, req != NULL ? http->hdr_json : http->hdr_plain);
    /* The method, from a clean slate: the handle keeps the last request's options. HTTPGET
     * also drops a previous request's body. */
    (void)curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
    if (strcmp(method, "GET") != 0 && (req != NULL || strcmp(method, "POST") == 0)) {
        (void)curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                               (curl_off_t)(req != NULL ? req_len : 0));
        (void)curl_easy_setopt(h, CURLOPT_POSTFIELDS, req != NULL ? req : "");
    } else {
        (void)curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        (void)curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    (void)curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_to_buf);
    (void)curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    (void)curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 0L);

    code = curl_easy_perform(h);
    if (code != CURLE_OK) {
        if (resp.nomem) {
            (void)snprintf(errbuf, errlen, "http: out of memory reading an answer");
            err = RX_ENOMEM;
        } else {
            err = transfer_failed(http, h, code, curl_err, out_conn_errno, errbuf, errlen);
        }
        goto done;
    }
    (void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    out_reply->status = status;
    out_reply->body = NULL;
    if (resp.len > 0)
        out_reply->body = json_loadb(resp.data, resp.len, 0, NULL);
done:
    rx__free(resp.data);
    if (err != RX_OK && h != NULL) {
        /* A broken exchange may leave the connection in any state: do not reuse it. */
        curl_easy_cleanup(h);
        h = NULL;
    }
    handle_give_back(http, h);
    return err;
}

rx_err
rx__http_stream(rx__http *http, const char *path, FILE *out, rx__http_reply *out_reply,
                int *out_conn_errno, char *errbuf, size_t errlen)
{
    char curl_err[CURL_ERROR_SIZE];
    char url[1024];
    stream_sink sink;
    CURL *h = NULL;
    CURLcode code;
    long status = 0;
    rx_err err = RX_OK;

    memset(&sink, 0, sizeof(sink));
    sink.out = out;
    sink.err.max = HTTP_ERROR_BODY_MAX;
    if (out_conn_errno != NULL)
        *out_conn_errno = 0;
    h = handle_take(http);
    if (h == NULL) {
        (void)snprintf(errbuf, errlen, "http: curl_easy_init failed");
        err = RX_ENOMEM;
        goto done;
    }
    sink.h = h;
    set_common(http, h, path, url, sizeof(url), curl_err);
    (void)curl_easy_setopt(h, CURLOPT_HTTPHEADER, http->hdr_plain);
    (void)curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
    (void)curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    (void)curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_to_stream);
    (void)curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    (void)curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 0L);
    code = curl_easy_perform(h);
    if (code != CURLE_OK) {
        if (sink.io_error) {
            (void)snprintf(errbuf, errlen, "writing the job's output failed: %s", strerror(errno));
            err = RX_EIO;
        } else if (sink.err.nomem) {
            err = RX_ENOMEM;
        } else {
            err = transfer_failed(http, h, code, curl_err, out_conn_errno, errbuf, errlen);
        }
        goto done;
    }
    (void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    out_reply->status = status;
    out_reply->body = NULL;
    if (status != 200 && sink.err.len > 0)
        out_reply->body = json_loadb(sink.err.data, sink.err.len, 0, NULL);
done:
    rx__free(sink.err.data);
    if (err != RX_OK && h != NULL) {
        curl_easy_cleanup(h);
        h = NULL;
    }
    handle_give_back(http, h);
    return err;
}
