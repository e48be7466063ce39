/*
 * results.h - the results of a job: one slot per task, in task order, and the spool directory
 * that holds the tasks' captured console output.
 *
 * A slot's output is a byte range of one file in the spool (commands: a file per task; function
 * workers: a file per worker, tasks one after another), so output is never held in memory.
 * rx_results_free removes the spool.
 */
#ifndef RX_CORE_RESULTS_H
#define RX_CORE_RESULTS_H

#include "rxjob.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rx__slot {
    rx_task_state state; /* RX_TASK_NOT_RUN until the task ends */
    int exit_status;     /* 0..255, or -1 */
    int signal;          /* signal that killed it, or 0 */
    int64_t start_ms;    /* CLOCK_MONOTONIC ms when it started; 0 = never */
    int64_t end_ms;      /* CLOCK_MONOTONIC ms when it ended */
    void *value;         /* result bytes + NUL, or NULL */
    size_t value_len;
    char *error;      /* failure message, or NULL */
    int32_t out_file; /* index in files, or -1 for none */
    uint64_t out_off; /* first byte of this task's output in that file */
    uint64_t out_len; /* its length in bytes */
} rx__slot;

struct rx_results {
    size_t n;
    rx__slot *slots;
    rx_job_status status; /* FINISHED or FAILED once the job is over */
    char *spool_dir;      /* owned; removed with its files by rx_results_free; may be NULL */
    char **files;         /* output file paths, owned */
    size_t n_files;
    size_t cap_files;
};

/* New results for n tasks, every slot NOT_RUN with no output; spool_dir NULL. NULL on ENOMEM. */
rx_results *rx__results_new(size_t n);

/* Add an output file path (copied); its index goes to *out_index. RX_ENOMEM. */
rx_err rx__results_add_file(rx_results *res, const char *path, int32_t *out_index);

/* Set a slot's error message (printf-style), replacing any earlier one. RX_ENOMEM. */
rx_err rx__slot_set_error(rx__slot *slot, const char *fmt, ...) RX_PRINTF(2, 3);

/* Settle the job status from the slots: FINISHED if every slot is RX_TASK_OK, else FAILED. */
void rx__results_settle(rx_results *res);

#endif
