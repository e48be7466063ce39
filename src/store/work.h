/*
 * work.h - the byte encodings of a job's work and of its per-task arguments, as stored in the
 * jobs.spec and job_args.data columns and copied to the spool files `work` and `args`, where
 * the task supervisor reads them.
 *
 * Both are simple length-prefixed binary, little-endian, versioned by a 4-byte magic:
 *   work: "RXW1" u32 kind, u32 argc, u32 n_env, u32 flags (1 cwd, 2 function, 4 stdin, 8 env),
 *         then argc strings, n_env strings, [cwd], [function] (each u32 length + bytes), then
 *         [stdin] (u64 length + bytes).
 *   args: "RXA1" u32 0, u64 n, u64 offsets[n + 1] (from the first data byte), then the data;
 *         argument i is bytes offsets[i] .. offsets[i + 1]. A reader seeks to one argument with
 *         two reads, so a supervisor never loads the whole table.
 */
#ifndef RX_STORE_WORK_H
#define RX_STORE_WORK_H

#include "rxjob.h"

#include <stddef.h>
#include <stdint.h>

typedef struct store_work {
    rx_work_kind kind;
    char **argv; /* NULL-terminated, argc elements; function work: argv[0] = the program */
    size_t argc;
    char **env; /* NULL-terminated "NAME=value", n_env elements; NULL = none */
    size_t n_env;
    char *cwd;        /* or NULL */
    char *function;   /* function work only; else NULL */
    void *stdin_data; /* or NULL = /dev/null */
    size_t stdin_len;
} store_work;

/* Encode w (borrowed). *out_blob is owned (rx__free). RX_OK; RX_ENOMEM; RX_ETOOBIG when a
 * string is over 4 GiB. */
rx_err store_work_encode(const store_work *w, void **out_blob, size_t *out_len);

/* Decode a blob into *out_w, every field owned (store_work_free). RX_OK; RX_ENOMEM; RX_EINVAL
 * for a malformed blob. */
rx_err store_work_decode(const void *blob, size_t len, store_work *out_w);

/* Free what store_work_decode allocated and zero *w. NULL-safe. */
void store_work_free(store_work *w);

/* Encode n arguments. *out_blob is owned (rx__free). RX_OK; RX_ENOMEM. */
rx_err store_args_encode(const rx_buf *args, size_t n, void **out_blob, size_t *out_len);

/* Read argument i from an args file open on fd (pread, so fd's offset is untouched).
 * *out_data is owned (rx__free) and NUL-terminated. RX_OK; RX_ENOMEM; RX_EINVAL for i out of
 * range or a malformed file; RX_EIO. */
rx_err store_args_read(int fd, size_t i, void **out_data, size_t *out_len);

#endif
