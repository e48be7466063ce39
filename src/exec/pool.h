/*
 * pool.h - run the tasks of one job on this host and collect their results: the engine under
 * the local and local-parallel contexts (and, later, rxjobd's local executor).
 *
 * Commands are spawned one process per task. C functions run in forked workers, each running a
 * chunk of tasks in a row and reporting each task's end over a pipe; a shared page tells the
 * parent which task a worker is on (for time limits) and tells workers to stop starting tasks
 * (continue_on_failure off). Every task is its own process group, or its worker's.
 */
#ifndef RX_EXEC_POOL_H
#define RX_EXEC_POOL_H

#include "rxjob.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rx__pool_job {
    const rx_work *work;
    const rx_buf *args; /* one per task, or NULL: every task gets an empty argument */
    size_t n_tasks;
    unsigned slots;          /* the most tasks running at once, >= 1 */
    unsigned chunk;          /* tasks per function worker; 0 = chosen here */
    int continue_on_failure; /* 0: the first failure stops the job */
    int64_t timeout_ms;      /* time limit of each task; 0 = none */
    int64_t grace_ms;        /* SIGTERM -> SIGKILL delay when stopping a task */
    int console_output;      /* write each task's output to stdout, in task order */
    rx_task_callback *callback;
    void *callback_user;
} rx__pool_job;

/* Default delay between SIGTERM and SIGKILL, in milliseconds. */
#define RX__KILL_GRACE_MS 1000

/*
 * Run the job's tasks in child processes. RX_OK (all tasks ok) or RX_EJOBFAILED (some failed),
 * both with *out_results set; RX_ENOMEM or RX_ESYSTEM (detail in errbuf) when the job could not
 * be run, after stopping and reaping every process it started.
 */
rx_err rx__pool_run(const rx__pool_job *job, rx_results **out_results, char *errbuf, size_t errlen);

/*
 * Run a function job's tasks one after the other in the calling process, with fds 1 and 2
 * redirected to the spool during each call. Returns as rx__pool_run.
 */
rx_err rx__run_in_process(const rx__pool_job *job, rx_results **out_results, char *errbuf,
                          size_t errlen);

#endif
