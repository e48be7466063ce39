/*
 * http.h - rxjobd's HTTP server: the routes of docs/protocol.md on libmicrohttpd, one thread per
 * connection (long polls block their thread), over a Unix socket that http_listen_unix makes.
 * JSON decoding and encoding live in api_jobs.c; this file does the HTTP side: reading bodies up
 * to the limit, the caller's uid (SO_PEERCRED on the Unix socket, a bearer token over TCP:
 * auth.h), routing, status codes, streaming output and results. With http_tcp_opts it also serves
 * a TCP listener (tcp.h), with TLS (libmicrohttpd's GnuTLS support).
 */
#ifndef RX_SERVER_HTTP_H
#define RX_SERVER_HTTP_H

#include "server/auth.h"
#include "server/engine.h"

#include <stddef.h>
#include <sys/types.h>

typedef struct http_server http_server;

/* Called once, from a connection thread, after the answer to POST /v1/daemon/stop is sent. */
typedef void http_stop_fn(void *user);

/*
 * The TCP side (rxjobd --listen): a second listener beside the Unix socket, same routes. Every
 * request on it must carry "Authorization: Bearer TOKEN" with a token of tokens; the caller is
 * the token's user. Anything else is answered 401 from the request's headers, before a byte of
 * its body is read.
 */
typedef struct http_tcp_opts {
    int listen_fd;            /* a listening TCP socket (tcp_listen); the server owns it from
                                 http_start on, even when that fails */
    const char *url;          /* "https://127.0.0.1:8443", for GET /v1/daemon; copied */
    const char *tls_cert_pem; /* PEM certificate (chain); NULL = plain HTTP (main.c allows that
                                 on loopback only); copied */
    const char *tls_key_pem;  /* its private key, PEM; copied, wiped when the server stops */
    auth_tokens *tokens;      /* required; the server owns it from http_start on, even when
                                 that fails */
} http_tcp_opts;

typedef struct http_opts {
    int listen_fd;            /* a listening AF_UNIX stream socket; the server owns it from
                                 http_start on, even when that fails */
    const char *socket_path;  /* for GET /v1/daemon; copied */
    const char *state_dir;    /* for GET /v1/daemon; copied */
    double started_s;         /* when the daemon started, UTC seconds */
    http_stop_fn *on_stop;    /* POST /v1/daemon/stop; may be NULL (then 503) */
    void *stop_user;          /* passed to on_stop; never read */
    const http_tcp_opts *tcp; /* NULL: the Unix socket only */
} http_opts;

/*
 * Make the daemon's socket: remove nothing, bind path (a socket file must not exist there),
 * chmod it 0600, listen. *out_fd is close-on-exec. RX_OK; RX_EINVAL for a path too long for
 * sun_path; RX_ESYSTEM (errbuf says which call failed and why, errno is kept).
 */
rx_err http_listen_unix(const char *path, int *out_fd, char *errbuf, size_t errlen);

/*
 * Whether a daemon answers on the socket at path: 1 if a connection is accepted (*out_pid, when
 * not NULL, gets the listener's pid from SO_PEERCRED, or 0), 0 if nothing listens there (no
 * file, or a stale socket file: connection refused), -1 for anything else (errno set).
 */
int http_probe_unix(const char *path, pid_t *out_pid);

/* 1 if this libmicrohttpd serves TLS (built with GnuTLS), else 0. */
int http_tls_supported(void);

/* Start serving e (borrowed: it must outlive the server). RX_OK; RX_EINVAL (TCP without
 * tokens); RX_ENOMEM; RX_ESYSTEM (libmicrohttpd did not start: a TLS certificate or key it
 * refused, say; its message is logged). */
rx_err http_start(const http_opts *opts, engine *e, http_server **out_server, char *errbuf,
                  size_t errlen);

/*
 * Stop accepting connections and close the listening socket. Requests in progress go on, but a
 * long poll or a followed output ends within a poll interval (503, or the end of the stream),
 * and new requests on open connections get 503. Call before unlinking the socket file.
 */
void http_quiesce(http_server *s);

/* Quiesce if not done, wait for every connection thread, free. NULL-safe. */
void http_stop(http_server *s);

#endif
