/*
 * job.h - the rx_job handle and the job functions' dispatch (revoscalepy's RxRemoteJob and
 * rx_get_job_status ... rx_get_jobs). A job belongs to a context that has jobs (the server
 * context, later Slurm through rxjobd); the context's job ops do the work, job.c checks the
 * arguments and keeps the promises every backend shares (out parameters written only on
 * success, UNDETERMINED for what cannot be asked).
 */
#ifndef RX_CLIENT_JOB_H
#define RX_CLIENT_JOB_H

#include "rxjob.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct rx_job {
    rx_context *ctx; /* borrowed: outlives the handle */
    int64_t id;      /* > 0 */
};

/* What a context with jobs does for the job functions. Each op gets valid arguments. */
typedef struct rx__job_ops {
    /* Status and task counts: RX_OK; RX_ENOENT (unknown or gone); RX_ECONTEXT; RX_ENOMEM. */
    rx_err (*get)(rx_job *job, rx_job_status *out_status, rx_job_progress *out_progress);
    /* rx_wait_for_job; timeout_s < 0 = forever. */
    rx_err (*wait)(rx_job *job, double timeout_s);
    /* rx_cancel_job; *out_canceled always written on RX_OK. */
    rx_err (*cancel)(rx_job *job, int *out_canceled);
    /* rx_get_job_results. */
    rx_err (*results)(rx_job *job, rx_tristate console_output, rx_tristate auto_cleanup,
                      rx_results **out_results);
    /* rx_get_job_output. */
    rx_err (*output)(rx_job *job, FILE *out);
    /* rx_cleanup_jobs for one job: *out_cleaned = 1 if removed; warnings logged here. */
    rx_err (*cleanup)(rx_job *job, int force, int *out_cleaned);
    /* rx_get_jobs: ids, oldest first; *out_ids from rx__malloc (NULL when none). */
    rx_err (*list)(rx_context *ctx, const rx_job_filter *filter, int64_t **out_ids, size_t *out_n);
} rx__job_ops;

/* A new handle on job id of ctx. RX_OK; RX_ENOMEM. */
rx_err rx__job_new(rx_context *ctx, int64_t id, rx_job **out_job);

#endif
