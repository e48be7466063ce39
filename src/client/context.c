/*
 * context.c - what every compute context shares: rx_exec's checks, the run-count rules, the
 * defaults of the tri-state options, and the context's error detail.
 */
#include "client/context.h"

#include "core/internal.h"
#include "core/spec.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

void
rx__warn_failed(const rx_results *res)
{
    size_t n = rx_results_count(res), first = n;

    for (size_t i = 0; i < n && first == n; i++) {
        if (rx_results_state(res, i) != RX_TASK_OK)
            first = i;
    }
    if (first < n)
        rx__log(RX_LOG_WARN, "job failed: %zu of %zu tasks failed; first: task %zu: %s",
                rx_results_failed(res), n, first, rx_results_error(res, first));
}

rx_context *
rx__context_new(const rx__context_ops *ops, unsigned workers)
{
    rx_context *ctx = rx__calloc(1, sizeof(*ctx));

    if (ctx == NULL)
        return NULL;
    ctx->ops = ops;
    ctx->workers = workers;
    ctx->wait = 1;
    ctx->console_output = 0;
    ctx->auto_cleanup = 1;
    return ctx;
}

const char *
rx_context_name(const rx_context *ctx)
{
    return ctx ? ctx->ops->name : "none";
}

unsigned
rx_context_workers(const rx_context *ctx)
{
    return ctx ? ctx->workers : 0;
}

const char *
rx_context_errmsg(const rx_context *ctx)
{
    return ctx ? ctx->errmsg : "";
}

void
rx_context_free(rx_context *ctx)
{
    if (ctx == NULL)
        return;
    if (ctx->ops->destroy != NULL)
        ctx->ops->destroy(ctx);
    rx__free(ctx);
}

static int
is_local(const rx_context *ctx)
{
    return ctx->ops->exec != NULL && strncmp(ctx->ops->name, "local", 5) == 0;
}

rx_err
rx_context_set_wait(rx_context *ctx, int wait)
{
    if (ctx == NULL)
        return RX_EINVAL;
    if (!wait && is_local(ctx))
        return RX_ENOTSUP; /* local contexts always wait, as in revoscalepy */
    ctx->wait = wait != 0;
    return RX_OK;
}

rx_err
rx_context_set_console_output(rx_context *ctx, int on)
{
    if (ctx == NULL)
        return RX_EINVAL;
    ctx->console_output = on != 0;
    return RX_OK;
}

rx_err
rx_context_set_auto_cleanup(rx_context *ctx, int on)
{
    if (ctx == NULL)
        return RX_EINVAL;
    ctx->auto_cleanup = on != 0;
    return RX_OK;
}

void
rx_exec_opts_init(rx_exec_opts *opts)
{
    const rx_exec_opts init = RX_EXEC_OPTS_INIT;

    *opts = init;
}

rx_work
rx_work_function(rx_function *fn)
{
    rx_work w;

    memset(&w, 0, sizeof(w));
    w.kind = RX_WORK_FUNCTION;
    w.function = fn;
    return w;
}

rx_work
rx_work_command(const char *const *argv)
{
    rx_work w;

    memset(&w, 0, sizeof(w));
    w.kind = RX_WORK_COMMAND;
    w.argv = argv;
    return w;
}

rx_err
rx_exec(rx_context *ctx, const rx_work *work, const rx_exec_opts *opts, rx_results **out_results,
        rx_job **out_job)
{
    const rx_exec_opts defaults = RX_EXEC_OPTS_INIT;
    rx__exec_call call;
    rx__pool_job *job = &call.pool;
    size_t n_tasks = 0;
    rx_err err;

    if (ctx == NULL)
        return RX_EINVAL;
    ctx->errmsg[0] = '\0';
    if (work == NULL || (ctx->wait && out_results == NULL) || (!ctx->wait && out_job == NULL)) {
        (void)snprintf(ctx->errmsg, sizeof(ctx->errmsg), "%s is NULL",
                       work == NULL ? "work"
                       : ctx->wait  ? "out_results"
                                    : "out_job");
        return RX_EINVAL;
    }
    if (opts == NULL)
        opts = &defaults;
    err = rx__exec_check(work, opts, ctx->errmsg, sizeof(ctx->errmsg));
    if (err != RX_OK)
        return err;
    if (work->kind == RX_WORK_COMMAND && work->cwd != NULL) {
        struct stat st;

        if (stat(work->cwd, &st) != 0 || !S_ISDIR(st.st_mode)) {
            (void)snprintf(ctx->errmsg, sizeof(ctx->errmsg),
                           "working directory '%s' is not a directory", work->cwd);
            return RX_EINVAL;
        }
    }
    err = rx__task_count(opts->times_to_run, opts->elem_args != NULL, opts->n_elem_args,
                         ctx->ops->default_count(ctx, opts), &n_tasks, ctx->errmsg,
                         sizeof(ctx->errmsg));
    if (err != RX_OK)
        return err;

    memset(&call, 0, sizeof(call));
    call.work = work;
    call.opts = opts;
    call.n_tasks = n_tasks;
    job->work = work;
    job->args = opts->n_elem_args > 0 ? opts->elem_args : NULL;
    job->n_tasks = n_tasks;
    job->slots = ctx->workers;
    if (opts->num_tasks > 0 && opts->num_tasks < job->slots)
        job->slots = opts->num_tasks;
    job->chunk = opts->task_chunk_size;
    job->continue_on_failure = opts->continue_on_failure != RX_FALSE;
    job->timeout_ms =
        opts->execution_timeout_s > 0 ? (int64_t)ceil(opts->execution_timeout_s * 1000.0) : 0;
    job->grace_ms = RX__KILL_GRACE_MS;
    job->console_output =
        opts->console_output == RX_INHERIT ? ctx->console_output : opts->console_output == RX_TRUE;
    job->callback = opts->callback;
    job->callback_user = opts->callback_user;
    return ctx->ops->exec(ctx, &call, out_results, out_job);
}
