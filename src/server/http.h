/*
 * http.h - rxjobd's HTTP server: the routes of docs/protocol.md on libmicrohttpd, one thread per
 * connection (long polls block their thread), over a Unix socket that http_listen_unix makes.
 * JSON decoding and encoding live in api_jobs.c; this file does the HTTP side: reading bodies up
 * to the limit, the caller's uid (SO_PEERCRED), routing, status codes, streaming output and
 * results.
 */
#ifndef RX_SERVER_HTTP_H
#define RX_SERVER_HTTP_H

#include "server/engine.h"

#include <stddef.h>
#include <sys/types.h>

typedef struct http_server http_server;

/* Called once, from a connection thread, after the answer to POST /v1/daemon/stop is sent. */
typedef void http_stop_fn(void *user);

typedef struct http_opts {
    int listen_fd;           /* a listening AF_UNIX stream socket; the server owns it from
                                http_start on, even when that fails */
    const char *socket_path; /* for GET /v1/daemon; copied */
    const char *state_dir;   /* for GET /v1/daemon; copied */
    double started_s;        /* when the daemon started, UTC seconds */
    http_stop_fn *on_stop;   /* POST /v1/daemon/stop; may be NULL (then 503) */
    void *stop_user;         /* passed to on_stop; never read */
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

/* Start serving e (borrowed: it must outlive the server). RX_OK; RX_ENOMEM; RX_ESYSTEM. */
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
