/*
 * http_client.c - HTTP/1.1 over rxjobd's Unix socket with libcurl; JSON in and out with jansson.
 * Or over TCP with TLS, to "https://HOST:PORT" (rxjobd --listen): then every request carries
 * the caller's token ("Authorization: Bearer", from $RXJOB_TOKEN or $RXJOB_TOKEN_FILE) and the
 * daemon's certificate is verified against $RXJOB_CA_FILE or the system's CA store, never not at
 * all. The transport is chosen once, by rx__http_open, and applied to each request by
 * set_transport.
 *
 * Each request takes an easy handle from the client's small stack of idle ones (or makes one)
 * and gives it back afterwards, options and live connection kept: no curl_easy_reset, so every
 * request sets each option it depends on (method, body, headers, write callback, timeout); the
 * header lists are built once per client, on its first request (when libcurl is loaded: dynlib.h).
 * A caller on one thread thus reuses one handle and one keep-alive connection for every request;
 * threads that overlap get a handle each. JSON answers are read into memory (the protocol's bodies
 * are bounded by what the daemon sends); console output is streamed to the caller's FILE as it
 * arrives, never held whole.
 */
#define _GNU_SOURCE /* struct ucred, SO_PEERCRED */
#include "client/http_client.h"

#include "client/daemon_start.h"
#include "client/dynlib.h"
#include "core/internal.h"
#include "core/token.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Idle easy handles one client keeps for reuse. */
#define HTTP_IDLE_MAX 4

/* How long connecting to the socket may take, in milliseconds. */
#define HTTP_CONNECT_TIMEOUT_MS 5000L

/* Bytes of an error body kept while streaming (the rest is dropped). */
#define HTTP_ERROR_BODY_MAX (64 * 1024)

/* A token: 32..512 characters of RFC 6750's b64token, as rxjobd's token file (auth.h). */
#define HTTP_TOKEN_MIN_LEN RX__TOKEN_MIN_LEN
#define HTTP_TOKEN_MAX_LEN RX__TOKEN_MAX_LEN

/* The longest "https://HOST:PORT" taken, bytes. */
#define HTTP_BASE_URL_MAX 300

struct rx__http {
    char *socket_path;    /* the Unix socket; NULL over TCP */
    char *base_url;       /* "https://HOST:PORT" over TCP; NULL on the Unix socket */
    char *token;          /* TCP: the bearer token; wiped at free */
    char *ca_file;        /* TCP: $RXJOB_CA_FILE, or NULL: the system's CA store */
    pthread_mutex_t lock; /* guards idle and building the header lists */
    CURL *idle[HTTP_IDLE_MAX];
    size_t n_idle;
    struct curl_slist *hdr_plain; /* "Expect:" (no 100-continue round trip) */
    struct curl_slist *hdr_json;  /* that and "Content-Type: application/json" */
    int hdr_ready;                /* the lists are built (http_ready; guarded by lock) */
};

/* libcurl, loaded on the first request of the process (dynlib.h): a process that links
 * librxjob and never talks to a daemon does not map it. NULL until then, or when it cannot be
 * loaded (curl_why says why). */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static const rx__curl_api *curl;
static const char *curl_why = "";
static CURLcode curl_init_code = CURLE_FAILED_INIT;

/* Without CURL_GLOBAL_SSL: most clients only speak to the Unix socket, and loading the TLS
 * library's configuration costs every rxjob command about 1.5 ms. OpenSSL (1.1 and later)
 * initializes itself on first use, when an https:// client makes its first connection. */
static void
curl_init_once(void)
{
    curl = rx__curl(&curl_why);
    if (curl != NULL)
        curl_init_code = curl->global_init(CURL_GLOBAL_NOTHING);
}

/*
 * Make http ready for its first request: libcurl loaded and initialized, the header lists built
 * for the transport. RX_OK; RX_ECONTEXT (libcurl cannot be loaded: errbuf says why); RX_ENOMEM.
 */
static rx_err
http_ready(rx__http *http, char *errbuf, size_t errlen)
{
    rx_err err = RX_OK;

    (void)pthread_once(&curl_once, curl_init_once);
    if (curl == NULL) {
        (void)snprintf(errbuf, errlen, "cannot talk to rxjobd at '%s': %s", rx__http_where(http),
                       curl_why);
        return RX_ECONTEXT;
    }
    if (curl_init_code != CURLE_OK) {
        /* curl_global_init fails only when it cannot allocate */
        (void)snprintf(errbuf, errlen, "http: curl_global_init failed: out of memory");
        return RX_ENOMEM;
    }
    (void)pthread_mutex_lock(&http->lock);
    if (!http->hdr_ready) {
        if (http->base_url == NULL) {
            /* "Expect:" turns off curl's 100-continue round trip for large bodies. */
            http->hdr_plain = curl->slist_append(NULL, "Expect:");
            http->hdr_json = curl->slist_append(NULL, "Expect:");
        } else {
            /* Over TCP curl's 100-continue stays (no "Expect:"): a daemon that refuses the token
             * answers 401 before a large body is sent, where otherwise the answer could be lost
             * with the connection it closes while the body is being written. */
            http->hdr_plain = NULL; /* no header of ours */
            http->hdr_json = curl->slist_append(NULL, "Content-Type: application/json");
        }
        if (http->base_url == NULL && http->hdr_json != NULL &&
            curl->slist_append(http->hdr_json, "Content-Type: application/json") == NULL) {
            curl->slist_free_all(http->hdr_json);
            http->hdr_json = NULL;
        }
        if ((http->base_url == NULL && http->hdr_plain == NULL) || http->hdr_json == NULL) {
            curl->slist_free_all(http->hdr_plain);
            curl->slist_free_all(http->hdr_json);
            http->hdr_plain = http->hdr_json = NULL;
            (void)snprintf(errbuf, errlen, "http: out of memory");
            err = RX_ENOMEM;
        } else {
            http->hdr_ready = 1;
        }
    }
    (void)pthread_mutex_unlock(&http->lock);
    return err;
}

rx_err
rx__http_new(const char *socket_path, rx__http **out_http)
{
    rx__http *http;

    if (socket_path == NULL || out_http == NULL || socket_path[0] == '\0')
        return RX_EINVAL;
    if (strlen(socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return RX_EINVAL;
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
    *out_http = http;
    return RX_OK;
}

void
rx__http_free(rx__http *http)
{
    if (http == NULL)
        return;
    /* Handles and header lists exist only once libcurl was loaded (http_ready). */
    for (size_t i = 0; i < http->n_idle; i++)
        curl->easy_cleanup(http->idle[i]);
    (void)pthread_mutex_destroy(&http->lock);
    if (http->hdr_ready) {
        curl->slist_free_all(http->hdr_plain);
        curl->slist_free_all(http->hdr_json);
    }
    rx__free(http->socket_path);
    rx__free(http->base_url);
    if (http->token != NULL) {
        explicit_bzero(http->token, strlen(http->token));
        rx__free(http->token);
    }
    rx__free(http->ca_file);
    rx__free(http);
}

const char *
rx__http_socket(const rx__http *http)
{
    return http->socket_path;
}

const char *
rx__http_where(const rx__http *http)
{
    return http->base_url != NULL ? http->base_url : http->socket_path;
}

/*
 * Why a token (of len bytes) is refused, for a message: "" if rx__token_ok takes it. The token
 * itself is never quoted: it may be a real one with a typo, and messages end up in logs.
 */
static const char *
token_problem(const char *token, size_t len, char *buf, size_t buf_len)
{
    if (rx__token_ok(token, len))
        return "";
    if (len == 0)
        (void)snprintf(buf, buf_len, "it is empty");
    else if (len > HTTP_TOKEN_MAX_LEN)
        (void)snprintf(buf, buf_len, "more than %d characters", HTTP_TOKEN_MAX_LEN);
    else if (len < HTTP_TOKEN_MIN_LEN)
        (void)snprintf(buf, buf_len, "%zu characters", len);
    else
        (void)snprintf(buf, buf_len, "a character that is not allowed there");
    return buf;
}

/* The end of every "not a token" message: what a token is (with the two bounds). */
#define TOKEN_SHAPE "a token is %d to %d characters of A-Z a-z 0-9 - . _ ~ + / (then optional '=')"

/*
 * The token: the first line of the file at path ($RXJOB_TOKEN_FILE), which must be the caller's
 * and closed to group and others (as ssh wants of a private key: a token is a password).
 * RX_OK with *out_token (rx__malloc'd); RX_EPERM (ownership, mode, or a first line that is not a
 * token); RX_EIO (cannot be read, not a file); RX_ENOMEM. Each message starts
 * "RXJOB_TOKEN_FILE 'path'" and says what is wrong in one line (rxjob names its --token-file
 * instead).
 */
static rx_err
read_token_file(const char *path, char **out_token, char *errbuf, size_t errlen)
{
    char buf[HTTP_TOKEN_MAX_LEN + 4];
    char why[80];
    struct stat st;
    size_t len = 0;
    rx_err err = RX_OK;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        (void)snprintf(errbuf, errlen, "RXJOB_TOKEN_FILE '%s': cannot open it: %s", path,
                       strerror(errno));
        return RX_EIO;
    }
    if (fstat(fd, &st) != 0) {
        (void)snprintf(errbuf, errlen, "RXJOB_TOKEN_FILE '%s': cannot stat it: %s", path,
                       strerror(errno));
        err = RX_EIO;
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        (void)snprintf(errbuf, errlen,
                       "RXJOB_TOKEN_FILE '%s' is %s, not a file holding the token on its first "
                       "line",
                       path, S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
        err = RX_EIO;
        goto done;
    }
    if (st.st_uid != geteuid()) {
        (void)snprintf(errbuf, errlen,
                       "RXJOB_TOKEN_FILE '%s' belongs to uid %lu, not to this user "
                       "(uid %lu): refusing to use it",
                       path, (unsigned long)st.st_uid, (unsigned long)geteuid());
        err = RX_EPERM;
        goto done;
    }
    if ((st.st_mode & 077) != 0) {
        (void)snprintf(errbuf, errlen,
                       "RXJOB_TOKEN_FILE '%s' is open to group or others (mode "
                       "%04o): refusing to use it; chmod 600 it",
                       path, (unsigned)(st.st_mode & 07777));
        err = RX_EPERM;
        goto done;
    }
    {
        long got = rx__read_full(fd, buf, sizeof(buf) - 1);

        if (got < 0) {
            (void)snprintf(errbuf, errlen, "RXJOB_TOKEN_FILE '%s': read failed: %s", path,
                           strerror(errno));
            err = RX_EIO;
            goto done;
        }
        len = (size_t)got;
    }
    buf[len] = '\0';
    if (len == 0) {
        (void)snprintf(errbuf, errlen,
                       "RXJOB_TOKEN_FILE '%s' is empty: its first line must be the token", path);
        err = RX_EPERM;
        goto done;
    }
    len = strcspn(buf, "\r\n"); /* the first line */
    buf[len] = '\0';
    if (!rx__token_ok(buf, len)) {
        (void)snprintf(errbuf, errlen,
                       "RXJOB_TOKEN_FILE '%s': its first line is not a token (%s): " TOKEN_SHAPE,
                       path, token_problem(buf, len, why, sizeof(why)), HTTP_TOKEN_MIN_LEN,
                       HTTP_TOKEN_MAX_LEN);
        err = RX_EPERM;
        goto done;
    }
    *out_token = rx__strdup(buf);
    if (*out_token == NULL)
        err = RX_ENOMEM;

done:
    explicit_bzero(buf, sizeof(buf));
    (void)close(fd);
    return err;
}

/* The caller's token for base_url: $RXJOB_TOKEN, else the first line of $RXJOB_TOKEN_FILE. */
static rx_err
load_token(const char *base_url, char **out_token, char *errbuf, size_t errlen)
{
    const char *env = getenv("RXJOB_TOKEN");
    char why[80];
    char *token = NULL;
    rx_err err;

    if (env != NULL && env[0] != '\0') {
        if (!rx__token_ok(env, strlen(env))) {
            (void)snprintf(errbuf, errlen, "RXJOB_TOKEN is not a token (%s): " TOKEN_SHAPE,
                           token_problem(env, strlen(env), why, sizeof(why)), HTTP_TOKEN_MIN_LEN,
                           HTTP_TOKEN_MAX_LEN);
            return RX_EPERM;
        }
        token = rx__strdup(env);
        if (token == NULL)
            return RX_ENOMEM;
    } else if ((env = getenv("RXJOB_TOKEN_FILE")) != NULL && env[0] != '\0') {
        err = read_token_file(env, &token, errbuf, errlen);
        if (err != RX_OK)
            return err;
    } else {
        (void)snprintf(errbuf, errlen,
                       "%s needs a token: set RXJOB_TOKEN, or RXJOB_TOKEN_FILE to a file (mode "
                       "0600) holding it (rxjob --token-file FILE)",
                       base_url);
        return RX_EPERM;
    }
    *out_token = token;
    return RX_OK;
}

/*
 * Check "https://HOST:PORT" (an optional trailing '/'): HOST a name, an IPv4 address or
 * [IPv6]; no user, path, query or fragment (the client adds the paths). Writes the URL without
 * the trailing '/' into buf. 0, or -1 with the reason in errbuf.
 */
static int
parse_https_url(const char *url, char *buf, size_t len, char *errbuf, size_t errlen)
{
    static const char scheme[] = "https://";
    const char *host = url + sizeof(scheme) - 1;
    const char *port;
    size_t n = strlen(url);
    int64_t port_n;

    if (n > 0 && url[n - 1] == '/')
        n--;
    if (n >= len || n >= HTTP_BASE_URL_MAX) {
        (void)snprintf(errbuf, errlen, "url '%.64s...' is too long", url);
        return -1;
    }
    memcpy(buf, url, n);
    buf[n] = '\0';
    host = buf + sizeof(scheme) - 1;
    if (host[strcspn(host, "/?#@ \t\r\n")] != '\0') {
        (void)snprintf(errbuf, errlen,
                       "url '%s': only https://HOST:PORT is taken (no user, path or query)", url);
        return -1;
    }
    if (host[0] == '[') {
        const char *close = strchr(host, ']');

        port = close != NULL && close[1] == ':' && close > host + 1 ? close + 1 : NULL;
    } else {
        port = strrchr(host, ':');
        if (port != NULL && (port == host || memchr(host, ':', (size_t)(port - host)) != NULL))
            port = NULL;
    }
    if (port == NULL || port[1] == '\0' || strspn(port + 1, "0123456789") != strlen(port + 1) ||
        rx__parse_i64(port + 1, 1, 65535, &port_n) != RX_OK) {
        (void)snprintf(errbuf, errlen,
                       "url '%s': not https://HOST:PORT (a port from 1 to 65535; an IPv6 address "
                       "in brackets)",
                       url);
        return -1;
    }
    return 0;
}

rx_err
rx__http_open(const char *url, rx__http **out_http, char *errbuf, size_t errlen)
{
    static const char unix_scheme[] = "unix:";
    static const char https_scheme[] = "https://";
    char path[PATH_MAX];
    char base[HTTP_BASE_URL_MAX];
    rx__http *http = NULL;
    const char *ca;
    rx_err err;

    if (out_http == NULL) {
        (void)snprintf(errbuf, errlen, "missing argument");
        return RX_EINVAL;
    }
    if (url == NULL || strncmp(url, unix_scheme, sizeof(unix_scheme) - 1) == 0) {
        if (url == NULL) {
            if (rx__daemon_socket_path(path, sizeof(path)) != RX_OK) {
                (void)snprintf(errbuf, errlen,
                               "the per-user socket path ($RXJOB_SOCKET or $XDG_RUNTIME_DIR) is "
                               "too long for a socket");
                return RX_EINVAL;
            }
        } else {
            int n = snprintf(path, sizeof(path), "%s", url + sizeof(unix_scheme) - 1);

            if (n <= 0 || (size_t)n >= sizeof(path)) {
                (void)snprintf(errbuf, errlen, "url '%.64s': no socket path after unix:", url);
                return RX_EINVAL;
            }
        }
        err = rx__http_new(path, out_http);
        if (err == RX_EINVAL)
            (void)snprintf(errbuf, errlen, "socket path '%s' is longer than %zu bytes", path,
                           sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        else if (err != RX_OK)
            (void)snprintf(errbuf, errlen, "%s", rx_strerror(err));
        return err;
    }
    if (strncmp(url, https_scheme, sizeof(https_scheme) - 1) != 0) {
        (void)snprintf(errbuf, errlen,
                       "url '%.200s': not unix:/path/to/socket or https://HOST:PORT (plain "
                       "http:// is never used over TCP: a token would travel in clear)",
                       url);
        return RX_EINVAL;
    }
    if (parse_https_url(url, base, sizeof(base), errbuf, errlen) != 0)
        return RX_EINVAL;
    /* rx__http_new wants a socket path; the TCP client is the same object with no socket. */
    err = rx__http_new("/", &http);
    if (err != RX_OK) {
        (void)snprintf(errbuf, errlen, "%s", rx_strerror(err));
        return err;
    }
    rx__free(http->socket_path);
    http->socket_path = NULL;
    http->base_url = rx__strdup(base);
    ca = getenv("RXJOB_CA_FILE");
    if (ca != NULL && ca[0] != '\0')
        http->ca_file = rx__strdup(ca);
    if (http->base_url == NULL || (ca != NULL && ca[0] != '\0' && http->ca_file == NULL)) {
        (void)snprintf(errbuf, errlen, "out of memory");
        err = RX_ENOMEM;
        goto fail;
    }
    err = load_token(base, &http->token, errbuf, errlen);
    if (err != RX_OK)
        goto fail;
    *out_http = http;
    return RX_OK;

fail:
    rx__http_free(http);
    return err;
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
        h = curl->easy_init();
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
        curl->easy_cleanup(h);
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

        (void)curl->easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
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

/* A TCP connection's socket: close-on-exec, so a task process started meanwhile does not keep
 * the connection (and its TLS session) open. */
static curl_socket_t
open_socket_tcp(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
    curl_socket_t fd;

    (void)clientp;
    (void)purpose;
    fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    return fd < 0 ? CURL_SOCKET_BAD : fd;
}

/* The request's URL and how it gets there: the Unix socket, its peer checked (check_peer); or
 * HTTPS with the daemon's certificate verified and the caller's bearer token. */
static void
set_transport(rx__http *http, CURL *h, const char *path, char *url, size_t url_len)
{
    if (http->base_url == NULL) {
        (void)snprintf(url, url_len, "http://localhost%s", path);
        (void)curl->easy_setopt(h, CURLOPT_URL, url);
        (void)curl->easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, http->socket_path);
        (void)curl->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
        (void)curl->easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
        (void)curl->easy_setopt(h, CURLOPT_PREREQFUNCTION, check_peer);
        (void)curl->easy_setopt(h, CURLOPT_PREREQDATA, http);
        return;
    }
    (void)snprintf(url, url_len, "%s%s", http->base_url, path);
    (void)curl->easy_setopt(h, CURLOPT_URL, url);
    (void)curl->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    (void)curl->easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket_tcp);
    /* libcurl's defaults, said out loud: the certificate is always verified, name included. */
    (void)curl->easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    (void)curl->easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (http->ca_file != NULL)
        (void)curl->easy_setopt(h, CURLOPT_CAINFO, http->ca_file);
    /* One method only, so libcurl sends it with the first request, not after a 401. */
    (void)curl->easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
    (void)curl->easy_setopt(h, CURLOPT_XOAUTH2_BEARER, http->token);
}

/* Options every request shares. */
static void
set_common(rx__http *http, CURL *h, const char *path, char *url, size_t url_len, char *curl_err)
{
    set_transport(http, h, path, url, url_len);
    (void)curl->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    (void)curl->easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, HTTP_CONNECT_TIMEOUT_MS);
    (void)curl->easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    /* Never a proxy: and no look at the proxy environment variables on every request. */
    (void)curl->easy_setopt(h, CURLOPT_NOPROXY, "*");
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
        (void)curl->easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
        conn_errno = os_errno != 0 ? (int)os_errno : ECONNREFUSED;
        /* What to do about it: no daemon there (ENOENT, ECONNREFUSED) is the usual case. */
        (void)snprintf(errbuf, errlen, "connect to rxjobd at '%s' failed: %s%s",
                       rx__http_where(http), strerror(conn_errno),
                       conn_errno != ENOENT && conn_errno != ECONNREFUSED ? ""
                       : http->base_url != NULL ? " (is rxjobd listening there?)"
                                                : " (is rxjobd running?)");
    } else if (http->base_url != NULL &&
               (code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CONNECT_ERROR ||
                code == CURLE_SSL_CACERT_BADFILE || code == CURLE_SSL_CERTPROBLEM)) {
        (void)snprintf(errbuf, errlen,
                       "TLS with rxjobd at '%s' failed: %s (the daemon's certificate must be "
                       "signed by a CA in %s%s and name the host)",
                       http->base_url, curl_err[0] != '\0' ? curl_err : curl->easy_strerror(code),
                       http->ca_file != NULL ? "RXJOB_CA_FILE " : "the system's CA store",
                       http->ca_file != NULL ? http->ca_file : "");
    } else if (code == CURLE_ABORTED_BY_CALLBACK) {
        (void)snprintf(errbuf, errlen,
                       "refused to talk to '%s': the process listening there runs as another "
                       "user (not this user, not root)",
                       http->socket_path);
    } else {
        (void)snprintf(errbuf, errlen, "request to rxjobd at '%s' failed: %s", rx__http_where(http),
                       curl_err[0] != '\0' ? curl_err : curl->easy_strerror(code));
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
    err = http_ready(http, errbuf, errlen);
    if (err != RX_OK)
        goto done;
    h = handle_take(http);
    if (h == NULL) {
        (void)snprintf(errbuf, errlen, "http: curl_easy_init failed");
        err = RX_ENOMEM;
        goto done;
    }
    set_common(http, h, path, url, sizeof(url), curl_err);
    /* "Expect:" turns off curl's 100-continue round trip for large bodies. */
    (void)curl->easy_setopt(h, CURLOPT_HTTPHEADER, req != NULL ? http->hdr_json : http->hdr_plain);
    /* The method, from a clean slate: the handle keeps the last request's options. HTTPGET
     * also drops a previous request's body. */
    (void)curl->easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
    if (strcmp(method, "GET") != 0 && (req != NULL || strcmp(method, "POST") == 0)) {
        (void)curl->easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                                (curl_off_t)(req != NULL ? req_len : 0));
        (void)curl->easy_setopt(h, CURLOPT_POSTFIELDS, req != NULL ? req : "");
    } else {
        (void)curl->easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        (void)curl->easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    (void)curl->easy_setopt(h, CURLOPT_WRITEFUNCTION, write_to_buf);
    (void)curl->easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    (void)curl->easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 0L);

    code = curl->easy_perform(h);
    if (code != CURLE_OK) {
        if (resp.nomem) {
            (void)snprintf(errbuf, errlen, "http: out of memory reading an answer");
            err = RX_ENOMEM;
        } else {
            err = transfer_failed(http, h, code, curl_err, out_conn_errno, errbuf, errlen);
        }
        goto done;
    }
    (void)curl->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    out_reply->status = status;
    out_reply->body = NULL;
    if (resp.len > 0)
        out_reply->body = json_loadb(resp.data, resp.len, 0, NULL);
done:
    rx__free(resp.data);
    if (err != RX_OK && h != NULL) {
        /* A broken exchange may leave the connection in any state: do not reuse it. */
        curl->easy_cleanup(h);
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
    err = http_ready(http, errbuf, errlen);
    if (err != RX_OK)
        goto done;
    h = handle_take(http);
    if (h == NULL) {
        (void)snprintf(errbuf, errlen, "http: curl_easy_init failed");
        err = RX_ENOMEM;
        goto done;
    }
    sink.h = h;
    set_common(http, h, path, url, sizeof(url), curl_err);
    (void)curl->easy_setopt(h, CURLOPT_HTTPHEADER, http->hdr_plain);
    (void)curl->easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
    (void)curl->easy_setopt(h, CURLOPT_HTTPGET, 1L);
    (void)curl->easy_setopt(h, CURLOPT_WRITEFUNCTION, write_to_stream);
    (void)curl->easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    (void)curl->easy_setopt(h, CURLOPT_TIMEOUT_MS, 0L);
    code = curl->easy_perform(h);
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
    (void)curl->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    out_reply->status = status;
    out_reply->body = NULL;
    if (status != 200 && sink.err.len > 0)
        out_reply->body = json_loadb(sink.err.data, sink.err.len, 0, NULL);
done:
    rx__free(sink.err.data);
    if (err != RX_OK && h != NULL) {
        curl->easy_cleanup(h);
        h = NULL;
    }
    handle_give_back(http, h);
    return err;
}
