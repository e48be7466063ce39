/*
 * daemon_start.h - the embedded default (DESIGN.md section 4): where the per-user rxjobd lives,
 * and starting it when nothing answers there, as task-spooler starts its server.
 */
#ifndef RX_CLIENT_DAEMON_START_H
#define RX_CLIENT_DAEMON_START_H

#include "rxjob.h"

#include <stddef.h>

/* How long to wait for a daemon the library started to answer, in milliseconds. */
#define RX__DAEMON_START_WAIT_MS 5000

/* The system-wide rxjobd's socket directory (rxjobd --system, root's): a socket below it is
 * never answered by a daemon the library starts, so none is started for it. */
#define RX__SYSTEM_SOCKET_DIR "/run/rxjob/"

/* The per-user socket: $RXJOB_SOCKET, else $XDG_RUNTIME_DIR/rxjob/rxjobd.sock, else
 * /tmp/rxjob-$UID/rxjobd.sock. RX_OK; RX_ETOOBIG if it does not fit in buf (or a socket). */
rx_err rx__daemon_socket_path(char *buf, size_t len);

/* The per-user state directory: $RXJOB_STATE_DIR, else $XDG_STATE_HOME/rxjob, else
 * $HOME/.local/state/rxjob (HOME from the password database when unset). RX_OK; RX_ETOOBIG;
 * RX_ENOENT when there is no home directory to put it in. */
rx_err rx__daemon_state_dir(char *buf, size_t len);

/* 1 if something accepts connections on socket_path now; else 0 with the connect errno in
 * *out_errno (may be NULL). */
int rx__daemon_answers(const char *socket_path, int *out_errno);

/*
 * Start rxjobd for socket_path and state_dir, detached (it daemonizes itself), and wait until
 * the socket answers, for up to RX__DAEMON_START_WAIT_MS. Two callers racing end with one daemon:
 * the daemon's lock refuses the second, and both callers then find the first one answering.
 * RX_OK once the socket answers; RX_ECONTEXT (reason in errbuf) otherwise.
 */
rx_err rx__daemon_start(const char *socket_path, const char *state_dir, char *errbuf,
                        size_t errlen);

#endif
