/*
 * status.h - the job status rules of DESIGN.md section 2, as pure functions (no I/O).
 *
 * This module is the only place that decides a job's status from its tasks' states, and the
 * only place that says which status changes are legal. The server, the contexts and the CLI ask
 * it; none of them encode the rules again.
 */
#ifndef RX_CORE_STATUS_H
#define RX_CORE_STATUS_H

#include "rxjob.h"

#include <stddef.h>

/* 1 if a job may move from `from` to `to` (DESIGN.md section 2: QUEUED->RUNNING|CANCELED|FAILED,
 * RUNNING->FINISHED|FAILED|CANCELED, FINISHED|FAILED|CANCELED->UNDETERMINED); 0 otherwise,
 * including from == to and any value outside the enum. */
int rx__status_can_move(rx_job_status from, rx_job_status to);

/* 1 if the task state is a failure (anything but RX_TASK_OK); 0 for RX_TASK_OK. */
int rx__task_state_is_failure(rx_task_state state);

/* What is known of a job's tasks, counted by phase. */
typedef struct rx__task_counts {
    size_t total;         /* tasks of the job */
    size_t pending;       /* not started (and not marked NOT_RUN) */
    size_t running;       /* started, not ended (including those being stopped) */
    size_t ok;            /* ended RX_TASK_OK */
    size_t failed;        /* ended in any failure state, including NOT_RUN and STOPPED */
    int cancel_requested; /* rx_cancel_job was accepted for this job */
} rx__task_counts;

/* The job's status from its task counts (DESIGN.md section 2):
 *  - canceled: CANCELED once nothing runs, RUNNING while tasks are still being stopped,
 *    and CANCELED at once when nothing had started;
 *  - all tasks ended: FINISHED if every one is ok, else FAILED;
 *  - anything running or ended, with tasks left: RUNNING;
 *  - nothing started: QUEUED.
 * A job with total == 0 is UNDETERMINED (no such job can exist). */
rx_job_status rx__job_status_from_counts(const rx__task_counts *c);

#endif
