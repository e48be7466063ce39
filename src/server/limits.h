/*
 * limits.h - rxjobd's limits: every bound a submission or a task can hit, each named with its
 * unit, set with `rxjobd --limit NAME=VALUE` (repeatable) and shown by GET /v1/daemon.
 * Submit-time limits are checked before anything is created (a clear 4xx error names the limit
 * and its value); run-time limits (output_bytes, result_bytes) are enforced by the task's
 * supervisor. docs/protocol.md "Limits" lists them.
 */
#ifndef RX_SERVER_LIMITS_H
#define RX_SERVER_LIMITS_H

#include "rxjob.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rx_limits {
    uint64_t body_bytes;           /* request body, bytes (default 16 MiB) */
    uint64_t argv_count;           /* argv elements of a command (default 4096) */
    uint64_t argv_bytes;           /* argv bytes, all elements together (default 1 MiB) */
    uint64_t env_count;            /* environment entries (default 4096) */
    uint64_t env_bytes;            /* environment bytes, all entries together (default 1 MiB) */
    uint64_t stdin_bytes;          /* a command's stdin, bytes (default 8 MiB) */
    uint64_t tasks_per_job;        /* tasks of one job (default 1 000 000) */
    uint64_t queued_jobs_per_user; /* jobs of one uid not yet ended (default 100 000) */
    uint64_t output_bytes;         /* console output kept per task, bytes; 0 = no cap (default);
                                      past it the rest is discarded and a marker line says so */
    uint64_t result_bytes;         /* a function task's result, bytes (default and most:
                                      RX_RESULT_MAX_BYTES) */
} rx_limits;

/* The defaults above. */
void rx_limits_default(rx_limits *out);

/* Apply one "NAME=VALUE" (VALUE: a decimal integer, with an optional K, M or G suffix meaning
 * KiB, MiB, GiB for the *_bytes limits). RX_OK; RX_EINVAL with a one-line reason in why (an
 * unknown name, a bad or out-of-range value). */
rx_err rx_limits_set(rx_limits *l, const char *name_value, char *why, size_t why_len);

/* The unit a limit is counted in ("bytes", "elements", "entries", "tasks", "jobs"), or NULL for
 * an unknown name. Static storage. */
const char *rx_limits_unit(const char *name);

/* The value of the limit named name (*out_value), 0 on success, -1 for an unknown name. */
int rx_limits_get(const rx_limits *l, const char *name, uint64_t *out_value);

/*
 * The reason a request over a limit gets, the same everywhere:
 *   "argv_bytes limit exceeded: 1048577 > 1048576 bytes (rxjobd --limit argv_bytes=...)".
 * value = 0 means "unknown, but over" (a chunked body cut off at the limit): "more than N".
 * Returns err, so a caller can `return rx_limits_why(...)`.
 */
rx_err rx_limits_why(rx_err err, char *why, size_t why_len, const char *name, uint64_t value,
                     uint64_t limit);

/* GET /v1/daemon's "limits": {"argv_bytes": {"value": 1048576, "unit": "bytes"}, ...}, every
 * limit by name. NULL on ENOMEM. Caller owns the reference. */
json_t *rx_limits_json(const rx_limits *l);

#endif /* RX_SERVER_LIMITS_H */
