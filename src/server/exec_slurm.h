/*
 * exec_slurm.h - rxjobd's Slurm executor (`rxjobd --executor slurm`, docs/slurm.md).
 *
 * A job becomes one Slurm job array, `--array=0-(N-1)%num_tasks`, whose every array task runs
 * the same task supervisor as the local executor (`rxjobd --shim JOB_DIR - ...`, the index
 * taken from SLURM_ARRAY_TASK_ID), so the exit record, output, result files and RXJOB_*
 * environment are the local executor's. The job's spool directory must be on a filesystem the
 * nodes share. One thread (exec_slurm_main, in place of sched.c's scheduler) submits arrays,
 * polls squeue and the exit records, records tasks as they start and end, and cancels through
 * scancel; Slurm, not the daemon's slots, decides when tasks run.
 */
#ifndef RX_SERVER_EXEC_SLURM_H
#define RX_SERVER_EXEC_SLURM_H

#include "rxjob.h"
#include "server/engine.h"

#include <stddef.h>
#include <stdint.h>

typedef struct exec_slurm exec_slurm;

/* Check that Slurm's commands can be run (sbatch --version) and create the executor. errbuf
 * gets why not. RX_OK; RX_EINVAL (no Slurm commands); RX_ENOMEM. */
rx_err exec_slurm_new(const engine_opts *opts, exec_slurm **out_x, char *errbuf, size_t errlen);

/* NULL-safe. Call after the thread has stopped. */
void exec_slurm_free(exec_slurm *x);

/* Recovery (engine_open, under the engine mutex, in its transaction, before jobs are settled):
 * every job not over whose array was submitted (its spool says so) may still have pending or
 * running array tasks: the job cannot be CANCELED (or stopped) before Slurm says they are gone.
 * Tasks recorded as running stay running: the thread reconciles them with Slurm and the exit
 * records at its first poll. */
void exec_slurm_recover(engine *e);

/* The executor's thread; runs instead of sched_main (arg is the engine). */
void *exec_slurm_main(void *arg);

#endif
