/*
 * api_jobs.h - the JSON side of rxjobd's job API (docs/protocol.md): request bodies and query
 * strings in, engine structs out, and engine structs back to JSON. Every function here but the
 * results writer (which reads result files) is pure (no I/O, no engine, no HTTP), so the
 * decoders can be unit-tested and fuzzed on their own; the routes in http.c do the rest.
 *
 * Decoders refuse anything protocol.md does not describe: malformed JSON, a body that is not an
 * object, unknown or duplicated fields, a field of the wrong JSON type, a value out of range or
 * over a limit below, bad base64. They answer RX_EINVAL (or RX_ECOUNT, RX_ETOOBIG) with a one-line
 * reason naming the field, and write their output only on success.
 */
#ifndef RX_SERVER_API_JOBS_H
#define RX_SERVER_API_JOBS_H

#include "server/engine.h"
#include "server/limits.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Fixed bounds of protocol.md; the settable ones (body, argv, env, stdin, tasks per job) are
 * rx_limits (limits.h), passed to api_jobs_decode_submit. */
#define API_JOBS_NUM_TASKS_MAX  ((int64_t)1000000) /* num_tasks, a count of slots */
#define API_JOBS_MAX_NAME_BYTES ((size_t)128)      /* function name, as rx_register_function */
#define API_JOBS_MAX_PATH_BYTES ((size_t)4096)     /* cwd and exe, decoded (PATH_MAX) */
#define API_JOBS_WAIT_MAX_S     60.0               /* the longest long poll, seconds */
#define API_JOBS_WAIT_DEFAULT_S 30.0               /* long poll without timeout_s, seconds */

/* One query-string argument, as the HTTP layer found it. value is NULL for "?key" alone. */
typedef struct api_jobs_arg {
    const char *key;
    const char *value;
} api_jobs_arg;

/* GET /v1/jobs's filter (engine_list's arguments). */
typedef struct api_jobs_filter {
    unsigned states; /* bit (1u << status) per wanted status; 0 = all */
    double since_s;  /* UTC seconds; 0 = unbounded */
    double until_s;  /* UTC seconds; 0 = unbounded */
} api_jobs_filter;

/*
 * Decode a POST /v1/jobs body (body_len bytes, no NUL needed) into an engine_spec for uid.
 * Checks types, ranges, limits, base64, NUL bytes where a C string must go (argv, env, cwd, exe,
 * and elem_args of a command), and the run-count rule between times_to_run and elem_args_b64
 * (RX_ECOUNT); whether num_tasks' default fits is the engine's call.
 * @param limits    body_bytes, argv_count, argv_bytes, env_count, env_bytes, stdin_bytes and
 *                  tasks_per_job are checked here; NULL = rx_limits_default. Borrowed.
 * @param out_spec  On RX_OK, the spec; free with api_jobs_spec_free.
 * @return RX_OK; RX_EINVAL or RX_ECOUNT with why; RX_ETOOBIG over one of those limits, with
 *         why = rx_limits_why's reason naming it; RX_ENOMEM.
 */
rx_err api_jobs_decode_submit(const char *body, size_t body_len, uid_t uid, const rx_limits *limits,
                              engine_spec **out_spec, char *why, size_t why_len);

/* Free a spec from api_jobs_decode_submit and everything in it. NULL is a no-op. */
void api_jobs_spec_free(engine_spec *spec);

/* GET /v1/jobs?state=S[,S...]&since_s=T&until_s=T. Unknown keys, repeated keys, unknown state
 * names (case does not matter), and numbers that are not plain non-negative decimals ("12",
 * "12.5") are RX_EINVAL. */
rx_err api_jobs_decode_filter(const api_jobs_arg *args, size_t n_args, api_jobs_filter *out_filter,
                              char *why, size_t why_len);

/* GET .../wait?timeout_s=S: 0 <= S <= API_JOBS_WAIT_MAX_S, default API_JOBS_WAIT_DEFAULT_S.
 * *out_timeout_ms is in milliseconds. RX_EINVAL as the filter. */
rx_err api_jobs_decode_wait(const api_jobs_arg *args, size_t n_args, int64_t *out_timeout_ms,
                            char *why, size_t why_len);

/*
 * A query string of at most one boolean flag, `key=0|1` (results' auto_cleanup, output's follow,
 * DELETE's force). *out_value: 0, 1, or absent_value when the key is not there. RX_EINVAL for
 * any other key, a repeated key or another value.
 */
rx_err api_jobs_decode_flag(const api_jobs_arg *args, size_t n_args, const char *key,
                            int absent_value, int *out_value, char *why, size_t why_len);

/* The job object of protocol.md. NULL on ENOMEM. Caller owns the reference. */
json_t *api_jobs_job_json(const engine_job *job);

/* One result slot of protocol.md, value_b64 included. NULL on ENOMEM. */
json_t *api_jobs_slot_json(const engine_slot *slot);

/* The error body {"error": error_name, "message": message}, error_name being an rx_errname.
 * NULL on ENOMEM. */
json_t *api_jobs_error_json(const char *error_name, const char *message);

/*
 * The body of GET /v1/jobs/{id}/results, {"job": ..., "slots": [...]}, produced piece by piece so
 * that results (up to RX_RESULT_MAX_BYTES per task) are read and base64-encoded into the output
 * buffer as it is sent, never whole in memory, raw or encoded. A slot's value is its in-memory
 * value, else the file res->values_dir/t<i>.result (engine.h), opened when the slot's turn comes
 * (spool_open_read: a FIFO or symlink put there fails the slot instead of hanging the writer)
 * and read VALUE_STEP_BYTES at a time: the one part of this module that does I/O. The writer
 * only reads res, which the caller keeps alive and frees after api_jobs_results_writer_free.
 */
typedef struct api_jobs_results_writer api_jobs_results_writer;

/* NULL on ENOMEM. res is borrowed. */
api_jobs_results_writer *api_jobs_results_writer_new(const engine_results *res);

/* Write the next at most cap bytes of the body to buf (cap >= 1). *out_n = bytes written, 0 at
 * the end. RX_OK; RX_ENOMEM; RX_EIO (reading a value's file failed: the body cannot go on). */
rx_err api_jobs_results_writer_read(api_jobs_results_writer *w, char *buf, size_t cap,
                                    size_t *out_n);

/* 1 once the whole body was written (the last read gave its closing "]}"), else 0. */
int api_jobs_results_writer_finished(const api_jobs_results_writer *w);

/* NULL is a no-op. Does not free the results. */
void api_jobs_results_writer_free(api_jobs_results_writer *w);

/* The HTTP status for an engine or decoder error (protocol.md "Errors"); 500 for the unknown. */
unsigned api_jobs_http_status(rx_err err);

#endif
