/*
 * task.h - what a running C function sees (rx_task), shared by every place that calls one:
 * in the caller (local context) and in forked workers (local-parallel).
 */
#ifndef RX_CORE_TASK_H
#define RX_CORE_TASK_H

#include "rxjob.h"

#include <stddef.h>

struct rx_task {
    const void *arg; /* NUL-terminated copy or borrowed buffer with a NUL after arg_len */
    size_t arg_len;
    size_t index;
    void *value; /* set by rx_task_set_result; owned; NUL-terminated */
    size_t value_len;
    char *error; /* set by rx_task_fail; owned */
};

/* Free what the function set, leaving the task ready for reuse. */
void rx__task_reset(rx_task *task);

#endif
