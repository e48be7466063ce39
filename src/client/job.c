/*
 * job.c - the rx_job handle and the job functions of rxjob.h (revoscalepy rx_get_job_status,
 * rx_wait_for_job, rx_cancel_job, rx_get_job_results, rx_get_job_output, rx_cleanup_jobs,
 * rx_get_jobs). Each checks its arguments, asks the job's context for its job ops (only contexts
 * with jobs have them) and keeps the promises shared by every backend: out parameters are
 * written only on success, and a status that cannot be learnt reads UNDETERMINED.
 */
#include "client/job.h"

#include "client/context.h"
#include "client/ctx_server.h"
#include "core/internal.h"

#include <math.h>

rx_err
rx__job_new(rx_context *ctx, int64_t id, rx_job **out_job)
{
    rx_job *job = rx__calloc(1, sizeof(*job));

    if (job == NULL)
        return RX_ENOMEM;
    job->ctx = ctx;
    job->id = id;
    *out_job = job;
    return RX_OK;
}

int64_t
rx_job_id(const rx_job *job)
{
    return job != NULL ? job->id : 0;
}

rx_err
rx_job_open(rx_context *ctx, int64_t id, rx_job **out_job)
{
    if (ctx == NULL || out_job == NULL || id <= 0)
        return RX_EINVAL;
    if (rx__server_job_ops(ctx) == NULL)
        return RX_ENOTSUP;
    return rx__job_new(ctx, id, out_job);
}

void
rx_job_free(rx_job *job)
{
    rx__free(job);
}

void
rx_jobs_free(rx_job **jobs, size_t n)
{
    if (jobs == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        rx_job_free(jobs[i]);
    rx__free(jobs);
}

static const rx__job_ops *
ops_of(const rx_job *job)
{
    return job != NULL && job->ctx != NULL ? rx__server_job_ops(job->ctx) : NULL;
}

rx_job_status
rx_get_job_status(rx_job *job)
{
    const rx__job_ops *ops = ops_of(job);
    rx_job_progress progress;
    rx_job_status status;

    /* Unknown, gone or unreachable: the status cannot be determined (DESIGN.md section 2). */
    if (ops == NULL || ops->get(job, &status, &progress) != RX_OK)
        return RX_JOB_UNDETERMINED;
    return status;
}

rx_err
rx_job_get_progress(rx_job *job, rx_job_status *out_status, rx_job_progress *out_progress)
{
    const rx__job_ops *ops = ops_of(job);
    rx_job_progress progress;
    rx_job_status status;
    rx_err err;

    if (job == NULL)
        return RX_EINVAL;
    if (ops == NULL)
        return RX_ENOTSUP;
    err = ops->get(job, &status, &progress);
    if (err != RX_OK)
        return err;
    if (out_status != NULL)
        *out_status = status;
    if (out_progress != NULL)
        *out_progress = progress;
    return RX_OK;
}

rx_err
rx_wait_for_job(rx_job *job, double timeout_s)
{
    const rx__job_ops *ops = ops_of(job);

    if (job == NULL || isnan(timeout_s))
        return RX_EINVAL;
    if (ops == NULL)
        return RX_ENOTSUP;
    return ops->wait(job, timeout_s);
}

rx_err
rx_cancel_job(rx_job *job, int *out_canceled)
{
    const rx__job_ops *ops = ops_of(job);
    int canceled = 0;
    rx_err err;

    if (job == NULL)
        return RX_EINVAL;
    if (ops == NULL)
        return RX_ENOTSUP;
    err = ops->cancel(job, &canceled);
    if (err == RX_OK && out_canceled != NULL)
        *out_canceled = canceled;
    return err;
}

static int
tristate_ok(rx_tristate t)
{
    return t == RX_INHERIT || t == RX_FALSE || t == RX_TRUE;
}

rx_err
rx_get_job_results(rx_job *job, rx_tristate console_output, rx_tristate auto_cleanup,
                   rx_results **out_results)
{
    const rx__job_ops *ops = ops_of(job);

    if (job == NULL || out_results == NULL || !tristate_ok(console_output) ||
        !tristate_ok(auto_cleanup))
        return RX_EINVAL;
    if (ops == NULL)
        return RX_ENOTSUP;
    return ops->results(job, console_output, auto_cleanup, out_results);
}

rx_err
rx_get_job_output(rx_job *job, FILE *out)
{
    const rx__job_ops *ops = ops_of(job);

    if (job == NULL || out == NULL)
        return RX_EINVAL;
    if (ops == NULL)
        return RX_ENOTSUP;
    return ops->output(job, out);
}

rx_err
rx_cleanup_jobs(rx_job *const *jobs, size_t n, int force, size_t *out_cleaned)
{
    size_t cleaned = 0;
    rx_err first_err = RX_OK;

    if (jobs == NULL && n > 0)
        return RX_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (jobs[i] == NULL)
            return RX_EINVAL;
        if (ops_of(jobs[i]) == NULL)
            return RX_ENOTSUP;
    }
    /* One job that cannot be cleaned does not keep the others from being cleaned. */
    for (size_t i = 0; i < n; i++) {
        int one = 0;
        rx_err err = ops_of(jobs[i])->cleanup(jobs[i], force != 0, &one);

        if (err != RX_OK) {
            if (first_err == RX_OK)
                first_err = err;
            continue;
        }
        cleaned += one != 0;
    }
    if (first_err != RX_OK)
        return first_err;
    if (out_cleaned != NULL)
        *out_cleaned = cleaned;
    return RX_OK;
}

rx_err
rx_get_jobs(rx_context *ctx, const rx_job_filter *filter, rx_job ***out_jobs, size_t *out_n)
{
    const rx__job_ops *ops;
    rx_job_filter all = {0};
    int64_t *ids = NULL;
    rx_job **jobs = NULL;
    size_t n = 0, made = 0;
    rx_err err;

    if (ctx == NULL || out_jobs == NULL || out_n == NULL)
        return RX_EINVAL;
    ops = rx__server_job_ops(ctx);
    if (ops == NULL)
        return RX_ENOTSUP;
    if (filter == NULL)
        filter = &all;
    if ((filter->states >> RX_JOB_STATUS_COUNT) != 0 || isnan(filter->since_s) ||
        isnan(filter->until_s) || filter->since_s < 0 || filter->until_s < 0)
        return RX_EINVAL;
    err = ops->list(ctx, filter, &ids, &n);
    if (err != RX_OK)
        return err;
    if (n > 0) {
        jobs = rx__calloc(n, sizeof(*jobs));
        if (jobs == NULL) {
            err = RX_ENOMEM;
            goto fail;
        }
        for (made = 0; made < n; made++) {
            err = rx__job_new(ctx, ids[made], &jobs[made]);
            if (err != RX_OK)
                goto fail;
        }
    }
    rx__free(ids);
    *out_jobs = jobs;
    *out_n = n;
    return RX_OK;

fail:
    rx_jobs_free(jobs, made);
    rx__free(ids);
    return err;
}
