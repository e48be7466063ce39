/*
 * ctx_parallel.c - the local-parallel context (revoscalepy RxLocalParallel): up to n worker
 * processes at once on this host, through the engine in src/exec/pool.c.
 */
#include "client/context.h"
#include "core/internal.h"

#include <unistd.h>

static size_t
parallel_default_count(const rx_context *ctx, const rx_exec_opts *opts)
{
    (void)ctx;
    (void)opts;
    return 1; /* a local context runs one task unless told otherwise (DESIGN.md section 2) */
}

static rx_err
parallel_exec(rx_context *ctx, rx__exec_call *call, rx_results **out_results, rx_job **out_job)
{
    rx__pool_job *job = &call->pool;

    (void)out_job;
    rx_err err = rx__pool_run(job, out_results, ctx->errmsg, sizeof(ctx->errmsg));

    if (err == RX_EJOBFAILED)
        rx__warn_failed(*out_results);
    return err;
}

static const rx__context_ops parallel_ops = {
    .name = "local-parallel",
    .default_count = parallel_default_count,
    .exec = parallel_exec,
    .destroy = NULL,
};

rx_err
rx_local_parallel_context(unsigned n_workers, rx_context **out_ctx)
{
    rx_context *ctx;

    if (out_ctx == NULL || n_workers > RX_MAX_WORKERS)
        return RX_EINVAL;
    if (n_workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);

        n_workers = n < 1 ? 1 : n > (long)RX_MAX_WORKERS ? RX_MAX_WORKERS : (unsigned)n;
    }
    ctx = rx__context_new(&parallel_ops, n_workers);
    if (ctx == NULL)
        return RX_ENOMEM;
    *out_ctx = ctx;
    return RX_OK;
}
