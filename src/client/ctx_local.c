/*
 * ctx_local.c - the local context (revoscalepy RxLocalSeq): one task at a time, in the caller.
 *
 * A C function is called in the calling process, as RxLocalSeq calls the function in the R or
 * Python session. A function cannot be stopped safely inside the caller, so a job with a time
 * limit runs its tasks in a forked child instead; commands always run as child processes.
 */
#include "client/context.h"
#include "core/internal.h"

#include <stdio.h>

static size_t
local_default_count(const rx_context *ctx, const rx_exec_opts *opts)
{
    (void)ctx;
    (void)opts;
    return 1;
}

static rx_err
local_exec(rx_context *ctx, rx__exec_call *call, rx_results **out_results, rx_job **out_job)
{
    rx__pool_job *job = &call->pool;
    rx_err err;

    (void)out_job;
    job->slots = 1;
    if (job->work->kind == RX_WORK_FUNCTION && job->timeout_ms == 0)
        err = rx__run_in_process(job, out_results, ctx->errmsg, sizeof(ctx->errmsg));
    else
        err = rx__pool_run(job, out_results, ctx->errmsg, sizeof(ctx->errmsg));
    if (err == RX_EJOBFAILED)
        rx__warn_failed(*out_results);
    return err;
}

static const rx__context_ops local_ops = {
    .name = "local",
    .default_count = local_default_count,
    .exec = local_exec,
    .destroy = NULL,
};

rx_err
rx_local_context(rx_context **out_ctx)
{
    rx_context *ctx;

    if (out_ctx == NULL)
        return RX_EINVAL;
    ctx = rx__context_new(&local_ops, 1);
    if (ctx == NULL)
        return RX_ENOMEM;
    *out_ctx = ctx;
    return RX_OK;
}
