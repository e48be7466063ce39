/*
 * context.h - compute contexts: one ops table, one file per backend (ctx_local.c,
 * ctx_parallel.c). rx_exec checks what does not depend on the backend, once, in context.c,
 * then hands a validated job to the backend's exec.
 */
#ifndef RX_CLIENT_CONTEXT_H
#define RX_CLIENT_CONTEXT_H

#include "exec/pool.h"
#include "rxjob.h"

#include <stddef.h>

typedef struct rx__context_ops {
    const char *name; /* "local", "local-parallel", ... */
    /* Default task count when there are neither elem_args nor times_to_run. */
    size_t (*default_count)(const rx_context *ctx);
    /* Run a validated job (task count fixed, options resolved) and collect its results. */
    rx_err (*exec)(rx_context *ctx, rx__pool_job *job, rx_results **out_results);
    void (*destroy)(rx_context *ctx); /* frees backend state; NULL-safe */
} rx__context_ops;

struct rx_context {
    const rx__context_ops *ops;
    unsigned workers; /* how many tasks at once by default */
    char errmsg[512];
};

/* Allocate a context with the given ops; NULL on ENOMEM. */
rx_context *rx__context_new(const rx__context_ops *ops, unsigned workers);

#endif
