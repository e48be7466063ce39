/*
 * http_client.h - the server context's HTTP/1.1 client: libcurl over rxjobd's Unix socket or
 * over TCP with TLS (https), JSON bodies with jansson (docs/protocol.md is the contract).
 *
 * One client per context. Making one loads nothing: its first request loads libcurl (dynlib.h)
 * and builds its header lists. It keeps its libcurl easy handles (and so their keep-alive
 * connections) for reuse: a single-threaded caller always uses the same one; concurrent callers
 * (status queries on distinct jobs while another thread waits) each take their own.
 */
#ifndef RX_CLIENT_HTTP_CLIENT_H
#define RX_CLIENT_HTTP_CLIENT_H

#include "rxjob.h"

#include <jansson.h>
#include <stdio.h>

typedef struct rx__http rx__http;

/* What came back from one request. */
typedef struct rx__http_reply {
    long status;  /* HTTP status; 0 when no answer came */
    json_t *body; /* the parsed JSON body, or NULL (not JSON, or empty); owned by the reply */
} rx__http_reply;

/* A client for the daemon at socket_path (copied). RX_OK; RX_EINVAL; RX_ENOMEM. */
rx_err rx__http_new(const char *socket_path, rx__http **out_http);

/*
 * A client for the daemon a url names (rxjob.h rx_server_context): NULL = the per-user socket
 * ($RXJOB_SOCKET, ...); "unix:/path/to/socket"; "https://HOST:PORT" (TLS, the certificate
 * verified against $RXJOB_CA_FILE or the system's CA store; the token from $RXJOB_TOKEN, else
 * the first line of the file $RXJOB_TOKEN_FILE, which must be the caller's and closed to group
 * and others). Reads the environment and the token file now. RX_OK; RX_EINVAL (a malformed url);
 * RX_EPERM (https without a token, a malformed token, or a token file open to others or not the
 * caller's); RX_EIO (the token file cannot be read); RX_ENOMEM. errbuf says why on failure.
 */
rx_err rx__http_open(const char *url, rx__http **out_http, char *errbuf, size_t errlen);

/* Free the client and its handles. NULL-safe. */
void rx__http_free(rx__http *http);

/* The socket path the client talks to; NULL over TCP. Borrowed until rx__http_free. */
const char *rx__http_socket(const rx__http *http);

/* Where the client talks to, for messages: the socket path, or "https://HOST:PORT". Borrowed
 * until rx__http_free. */
const char *rx__http_where(const rx__http *http);

/*
 * One request with an optional JSON body (NULL: none) and a JSON answer.
 * method: "GET", "POST", "DELETE". path: from "/v1/...", query included.
 * timeout_ms: the most the whole request may take; 0 = no limit.
 * Returns RX_OK when an HTTP answer came (any status: see out_reply->status, and out_reply->body
 * when it was JSON); RX_ECONTEXT when libcurl cannot be loaded (dynlib.h; *out_conn_errno 0),
 * or the daemon could not be reached or the exchange broke
 * (*out_conn_errno then holds the connect errno, or 0 when the connection was made: callers start
 * the daemon on ENOENT / ECONNREFUSED); RX_ENOMEM. errbuf gets a one-line reason on failure.
 */
rx_err rx__http_json(rx__http *http, const char *method, const char *path, const json_t *body,
                     long timeout_ms, rx__http_reply *out_reply, int *out_conn_errno, char *errbuf,
                     size_t errlen);

/* As rx__http_json, with the body already encoded: req_len bytes of JSON text at req (NULL: no
 * body), borrowed for the call. */
rx_err rx__http_text(rx__http *http, const char *method, const char *path, const char *req,
                     size_t req_len, long timeout_ms, rx__http_reply *out_reply,
                     int *out_conn_errno, char *errbuf, size_t errlen);

/*
 * GET path and stream a 200 answer's body to out as it arrives (never whole in memory). Any other
 * status writes nothing to out; a JSON error body is kept in out_reply->body. Returns as
 * rx__http_json, plus RX_EIO when writing to out failed.
 */
rx_err rx__http_stream(rx__http *http, const char *path, FILE *out, rx__http_reply *out_reply,
                       int *out_conn_errno, char *errbuf, size_t errlen);

/* Release what a reply holds; the reply is then empty. NULL-safe. */
void rx__http_reply_clear(rx__http_reply *reply);

/* The "message" of a JSON error body, else "" (borrowed from the reply). */
const char *rx__http_reply_message(const rx__http_reply *reply);

#endif
