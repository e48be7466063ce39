/*
 * context.h - compute contexts: one ops table, one file per backend (ctx_local.c,
 * ctx_parallel.c, ctx_server.c). rx_exec checks what does not depend on the backend, once, in
 * context.c, then hands the validated call to the backend's exec.
 */
#ifndef RX_CLIENT_CONTEXT_H
#define RX_CLIENT_CONTEXT_H

#include "exec/pool.h"
#include "rxjob.h"

#include <stddef.h>

/* One rx_exec call, validated: the task count is fixed and the options are resolved. */
typedef struct rx__exec_call {
    const rx_work *work;
    const rx_exec_opts *opts; /* as the caller gave them (never NULL) */
    size_t n_tasks;
    rx__pool_job pool; /* the same, ready for the local engine (src/exec/pool.c) */
} rx__exec_call;

typedef struct rx__context_ops {
    const char *name; /* "local", "local-parallel", "server" */
    /* Task count when there are neither elem_args nor times_to_run (DESIGN.md section 2). */
    size_t (*default_count)(const rx_context *ctx, const rx_exec_opts *opts);
    /* Run (waiting context: fill *out_results) or submit (non-waiting: fill *out_job). */
    rx_err (*exec)(rx_context *ctx, rx__exec_call *call, rx_results **out_results,
                   rx_job **out_job);
    void (*destroy)(rx_context *ctx); /* frees backend state (ctx->impl); NULL-safe */
} rx__context_ops;

struct rx_context {
    const rx__context_ops *ops;
    unsigned workers;   /* how many tasks at once by default */
    int wait;           /* rx_exec waits for the end (local contexts: always 1) */
    int console_output; /* defaults of the tri-state options */
    int auto_cleanup;
    void *impl; /* the backend's state */
    char errmsg[512];
};

/* Allocate a context with the given ops; NULL on ENOMEM. wait = 1, console_output = 0,
 * auto_cleanup = 1. */
rx_context *rx__context_new(const rx__context_ops *ops, unsigned workers);

/* Log the warning revoscalepy gives when results with failed tasks are collected. */
void rx__warn_failed(const rx_results *res);

#endif
