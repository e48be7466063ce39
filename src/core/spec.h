/*
 * spec.h - validating a job before it is created: run-count rules and option checks
 * (DESIGN.md section 2), as pure functions. Nothing runs and no job exists when these fail.
 */
#ifndef RX_CORE_SPEC_H
#define RX_CORE_SPEC_H

#include "rxjob.h"

#include <stddef.h>
#include <stdint.h>

/*
 * The number of tasks of a job (DESIGN.md section 2, "Run-count rules"):
 *  - has_elem_args: n_elem_args tasks; times_to_run must be -1 or equal to it, else RX_ECOUNT;
 *    n_elem_args == 0 is RX_EINVAL (a job with no task).
 *  - otherwise times_to_run tasks when it is >= 1; when it is -1, default_count (1 for a local
 *    context, num_tasks for a server context).
 *  - times_to_run == 0 or < -1 is RX_EINVAL; a count above RX_MAX_TASKS is RX_EINVAL.
 * Writes a short reason (NUL-terminated, cut to why_len) to why on failure when why != NULL.
 */
rx_err rx__task_count(int64_t times_to_run, int has_elem_args, size_t n_elem_args,
                      size_t default_count, size_t *out_count, char *why, size_t why_len);

/*
 * Check the parts of rx_exec's input that do not depend on the context: work (kind, function,
 * argv non-empty with non-NULL elements), opts (struct_size, tristates in range,
 * execution_timeout_s finite, >= 0 and <= RX_MAX_TIMEOUT_S), and, for a command, that no elem_arg
 * holds a NUL byte (it could not reach argv). Returns RX_OK, RX_EINVAL or
 * RX_ECOUNT, with a reason in why as rx__task_count does. opts must not be NULL.
 */
rx_err rx__exec_check(const rx_work *work, const rx_exec_opts *opts, char *why, size_t why_len);

/* The smallest struct_size rx_exec accepts: the size of the first release's rx_exec_opts. */
#define RX__EXEC_OPTS_MIN_SIZE sizeof(rx_exec_opts)

#endif
