/*
 * sched.h - the engine's inside, shared by engine.c (the API, group commit, recovery) and
 * sched.c (the scheduler thread): the in-memory jobs, the running supervisors, and the rules
 * that move them.
 *
 * Memory mirrors the store. Every change is written to the store first, in a transaction, and
 * applied to memory only once that transaction committed, all under the engine's mutex; so a
 * reader holding the mutex never sees a state the store could lose. Jobs whose status is
 * QUEUED or RUNNING are also on the active list, oldest first, which is what the scheduler walks.
 */
#ifndef RX_SERVER_SCHED_H
#define RX_SERVER_SCHED_H

#include "core/status.h"
#include "server/engine.h"
#include "server/exec_local.h"
#include "server/limits.h"
#include "store/spool.h"
#include "store/store.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* What a job looked like before this iteration touched it, to undo a failed commit. */
typedef struct ejob_saved {
    rx_job_status status;
    double ended_s;
    int64_t stop_task;
    int cancel_requested;
    int cleanup_requested;
    uint64_t next_task;
    uint64_t running, ok, failed;
    unsigned shims;
    uint64_t *requeue; /* copy, or NULL */
    size_t n_requeue;
} ejob_saved;

typedef struct ejob {
    int64_t id;
    uid_t uid;
    rx_work_kind kind;
    uint64_t n_tasks;
    unsigned num_tasks;       /* 0 = the daemon's slots */
    unsigned task_chunk_size; /* function tasks one supervisor runs in a row; 0 = chosen */
    int continue_on_failure;
    int console_output;
    int auto_cleanup;
    int has_args;
    int64_t timeout_ms;
    double created_s;
    double ended_s;
    rx_job_status status;
    int cancel_requested;
    int cleanup_requested; /* forced cleanup waits for the tasks to be gone; hidden meanwhile */
    int64_t stop_task;     /* the failed task that stopped the job, or -1 */

    uint64_t next_task; /* every index >= next_task has never started */
    uint64_t *requeue;  /* indices below next_task to start again (never ran), ascending */
    size_t n_requeue;
    size_t cap_requeue;
    uint64_t running; /* tasks with a running row */
    unsigned shims;   /* its supervisors running (a chunk's is one for several tasks) */
    uint64_t ok;      /* tasks ended ok */
    uint64_t failed;  /* tasks ended in any failure (rows); NOT_RUN without row not counted */
    int ext_alive;    /* slurm executor: its array may still have tasks in Slurm, so a cancel or
                         stop is not over yet (counted as running then; exec_slurm.c) */

    int prepared; /* its spool's args/stdin (and work file) were written by this engine */
    void *work;   /* prepared, local executor: its encoded work, sent to each supervisor with
                     its task (exec_local_assign) instead of a work file; NULL otherwise */
    size_t work_len;
    int claimed;         /* its results are being collected with cleanup: gone to everyone else */
    int delete_pending;  /* collected with cleanup: its rows' delete is not yet committed */
    struct ejob *d_next; /* on the engine's delete list (d_head) */
    int pins;            /* readers of its spool without the mutex */
    int detached; /* no longer in the engine: freed (and its spool removed) at the last unpin */
    int active;   /* on the active list */
    struct ejob *a_prev, *a_next;

    int deleting; /* the current transaction deletes its rows */
    int touched;  /* by the current transaction */
    ejob_saved saved;
    struct ejob *t_next;
} ejob;

/* A supervisor being watched: the run of tasks [idx, idx + count) of one job (count > 1: a chunk
 * of function tasks, one exec of the program; docs/engine.md "Chunks"). */
typedef struct erun {
    ejob *job;
    uint64_t idx;
    uint64_t count;
    exec_shim shim;
    double started_s;
    int signaled; /* SIGTERM sent (cancel, or the job stopped) */
    int exited;   /* its pidfd was readable (released), or it said "e" (alive, waits for "k") */
    int have_rec; /* rec_err holds the outcome of reading its exit record */
    rx_err rec_err;
    spool_run_exit rec;
} erun;

/* A blank supervisor spawned ahead of any task (sched.c spares_fill): it waits for its task
 * (exec_local_assign). Nothing of it is in the store; if the daemon dies it exits without a
 * record. */
typedef struct espare {
    exec_shim shim;
} espare;

#define SCHED_SPARES_MAX 4 /* spares at most, and at most `slots` */

#define ENGINE_CHUNK_AUTO_MAX 4096  /* tasks in an automatic chunk, at most */
#define ENGINE_CHUNK_MAX      10000 /* tasks in any chunk, at most (its exit record's size) */

/* One submission waiting for the group commit. */
typedef struct esub {
    store_job_row row;
    void *spec;
    size_t spec_len;
    void *args; /* or NULL */
    size_t args_len;
    ejob *job_mem;       /* allocated by the submitter, so a committed job always fits in memory */
    pthread_cond_t cond; /* its submitter waits here (with q_mu) to be done, or to lead */
    int lead;            /* its submitter commits the next batch */
    int done;
    rx_err err;
    char why[256]; /* the store's reason when err is RX_ESTORE */
    engine_job job;
    struct esub *next;
} esub;

struct engine {
    char *state_dir;
    char *self_exe;
    char *shim_exe;        /* the task supervisor (exec_local_shim_open) */
    int shim_fd;           /* ... opened at start, or -1 */
    uint64_t output_bytes; /* limits.h output_bytes: 0 = no cap */
    uint64_t result_bytes; /* limits.h result_bytes */
    unsigned slots;
    int hold;
    int64_t grace_ms;
    int system;               /* engine_opts.system: tasks run as their jobs' users */
    rx_limits limits;         /* engine_opts.limits, copied */
    struct exec_slurm *slurm; /* the Slurm executor, or NULL for the local one */

    store *st;
    pthread_mutex_t mu;
    pthread_cond_t changed; /* broadcast on any job change; CLOCK_MONOTONIC */

    ejob **jobs; /* every job not removed, by id */
    size_t n_jobs;
    size_t cap_jobs;
    ejob *a_head, *a_tail; /* the active list */
    ejob *t_head;          /* jobs touched by the current transaction */
    ejob *d_head;     /* collected with cleanup, hidden: deleted by the next transaction (below) */
    int64_t d_due_ms; /* rx__now_ms() by which the scheduler deletes d_head on its own */

    erun *runs;
    size_t n_runs;
    size_t cap_runs;
    espare spares[SCHED_SPARES_MAX]; /* spawned ahead (local executor, not --system) */
    size_t n_spares;
    int64_t spares_after_ms; /* rx__now_ms() before which no spare is spawned (one died) */
    exec_shim *reaps;        /* told "k" after their end was committed: reaped when they exit */
    size_t n_reaps;
    size_t cap_reaps;

    uint64_t submissions_total;
    uint64_t tasks_started_total;
    int stopping;
    int start_later; /* a supervisor could not be spawned for now (EAGAIN): try again soon */
    int wake_fd;     /* eventfd: wakes the scheduler */
    pthread_t sched_thread;
    int sched_started;

    /* The group commit (engine.c submit_wait): submissions not yet taken by a leader. */
    pthread_mutex_t q_mu;
    pthread_cond_t q_idle; /* engine_close waits here for the last leader */
    esub *q_head, *q_tail;
    int committing; /* a leader is committing a batch (the lead passes on while any queue) */
    int q_stop;

    /* Jobs not yet ended, per uid (queued_jobs_per_user): the active list's jobs plus the
     * submissions between their check and their commit. Under mu. */
    struct engine_uid_count *uid_counts;
    size_t n_uid_counts;

    /* The remover thread (engine.c): spool directories of jobs canceled or removed, renamed
     * out of the way (spool/<id>.gone) by engine_queue_gone and removed by the thread. Under
     * rm_mu, taken after mu (never before it); the thread itself never takes mu. */
    pthread_mutex_t rm_mu;
    pthread_cond_t rm_cond; /* the thread waits here for work or rm_stop */
    pthread_t rm_thread;
    int rm_started;
    int rm_stop;                /* engine_close: drain until rm_stop_by, then end */
    struct timespec rm_stop_by; /* CLOCK_MONOTONIC */
    struct engine_gone *gone;   /* FIFO: gone[gone_head .. n_gone) are still to do */
    size_t gone_head;
    size_t n_gone;
    size_t cap_gone;
};

/* UTC seconds now. */
double engine_now_s(void);

/* The job's task counts (core/status.h) and its status by the rules, from memory. */
void engine_job_counts(const ejob *j, rx__task_counts *out);

/* Save j's state before a change (once per transaction). RX_OK; RX_ENOMEM. */
rx_err engine_touch(engine *e, ejob *j);

/* Recompute j's status from its counts (rx__job_status_from_counts), moving only as
 * DESIGN.md section 2 allows; sets ended_s when it becomes terminal. 1 if it changed. */
int engine_job_settle(ejob *j);

/*
 * End a transaction that changed the touched jobs: settle each one's status, write its row (or
 * delete it, when a forced cleanup can now finish), COMMIT. Then, on success: take jobs that
 * reached a final status off the active list, queue the spools of canceled and removed jobs for
 * removal, signal the supervisors of jobs being canceled or stopped, wake engine_wait callers.
 * On failure: ROLLBACK and restore every touched job as it was. Caller holds mu and began the
 * transaction. RX_OK; RX_ESTORE; RX_ENOMEM.
 */
rx_err engine_commit_touched(engine *e);
void engine_after_commit(engine *e);

/* Find a job by id (any uid, including hidden ones), or NULL. Caller holds mu. */
ejob *engine_find(engine *e, int64_t id);

/* Push a task index to start again (never ran). RX_OK; RX_ENOMEM. */
rx_err engine_requeue(ejob *j, uint64_t idx);

/* The next task of j to start, or -1 when none may start now. Does not take it. */
int64_t engine_next_task(const ejob *j);

/* Take that task (after a successful start or a failure to start). */
void engine_take_task(ejob *j, uint64_t idx);

/* Record how task idx of j ended, from its exit record (rec with rec_err RX_OK; otherwise the
 * task is lost), in the store and in memory. Caller touched j, holds mu and the transaction.
 * A go-0 record puts the task back to be started again. A failure stops the job when
 * continue_on_failure is off. RX_OK; RX_ESTORE; RX_ENOMEM. */
rx_err engine_task_ended(engine *e, ejob *j, uint64_t idx, const exec_shim *shim, double started_s,
                         const spool_exit *rec, rx_err rec_err);

/* Record how the run [first, first + count) of j ended, from its record (rec with rec_err RX_OK;
 * otherwise every task of it is lost), and that its supervisor is gone (j->shims). A task with
 * an entry ends as it says; one without never started and is put back (but the first of a run
 * whose supervisor was told to start: it counts as started, and is lost; a go-0 record is
 * believed only from a supervisor not told to start). Caller touched j, holds mu and the
 * transaction. RX_OK; RX_ESTORE; RX_ENOMEM. */
rx_err engine_run_ended(engine *e, ejob *j, uint64_t first, uint64_t count, const exec_shim *shim,
                        double started_s, const spool_run_exit *rec, rx_err rec_err);

/* The tasks one supervisor runs in a row for j (1: one each): the job's task_chunk_size (at
 * most ENGINE_CHUNK_MAX), for command work as for function work; without one, function work
 * gets the automatic chunk, which spreads the job over its slots as the local pool does
 * (exec/pool.c auto_chunk), and command work 1. Always 1 with an output cap or under Slurm. */
uint64_t engine_chunk_size(const engine *e, const ejob *j);

/* Make j's spool ready for its first task in this engine: the directory, `work`, `args`,
 * `stdin`. Caller holds mu. RX_OK; RX_EIO / RX_ESTORE / RX_ENOMEM with why. */
rx_err engine_prepare_spool(engine *e, ejob *j, char *why, size_t why_len);

/* Take a job out of the engine (memory only: its rows are deleted). Its spool is queued for
 * removal and the job freed, or, while readers pin it, at the last unpin. Caller holds mu. */
void engine_detach(engine *e, ejob *j);

/* Take j off the active list. Caller holds mu. */
void engine_active_remove(engine *e, ejob *j);

/* Hand a job's spool directory to the remover thread: renamed at once to spool/<id>.gone (a
 * name no job has), removed when the thread gets to it. Caller holds mu (or is engine_open
 * before the threads start). Never blocks on a removal. */
void engine_queue_gone(engine *e, int64_t id);

/* Roll back the current transaction and undo every touched job in memory (a failure before
 * engine_commit_touched). Caller holds mu. */
void engine_abort_touched(engine *e);

/*
 * Jobs collected with cleanup (engine_results_end) are deleted by the next transaction of the
 * engine, not by one of their own in the collecting connection's thread: the scheduler's next
 * turn, or a submission's that starts its job at once (commit_batch), whichever comes first, and
 * ENGINE_DELETE_DELAY_MS after the first of them at the latest (the scheduler's own turn then);
 * with the Slurm executor (another scheduler loop) at once, as before. The job is hidden from
 * the end of the collection (claimed), so no caller can tell; the connection is free for its
 * next request without waiting for an fsync, and in a submit -> wait -> collect loop the next
 * submission's commit carries the delete (a scheduler woken at once would take the mutex for
 * its own commit just as that submission comes).
 * engine_deletes_write: the deletes of the list, in the open transaction.
 * engine_deletes_done: after that transaction committed: the jobs leave memory (their spools
 * are queued for removal); the list is empty. On a failure the list stays for the next one.
 * Caller holds mu.
 */
#define ENGINE_DELETE_DELAY_MS 5
rx_err engine_deletes_write(engine *e);
void engine_deletes_done(engine *e);

/* The scheduler thread (sched.c). */
void *sched_main(void *arg);

/* Wake the scheduler (after a submission, or to stop it). */
void sched_wake(engine *e);

/*
 * Starting a submission's first tasks in its own transaction (engine.c commit_batch), which
 * saves the scheduler's wake-up and a commit (an fsync) on the path of a job submitted to an
 * idle daemon. All under mu, taken before the transaction began and held until the runs got
 * "go" or were abandoned, so nothing else sees the jobs or runs before they are durable.
 *
 * sched_can_start_new: 1 when a job submitted now could start at once as the scheduler would
 * start it: the local executor (not --system, --hold, stopping), a spare supervisor ready, a
 * slot free, and no older job waiting for one (first in, first out).
 * sched_start_new: in the open transaction, start what jobs[0..n) (new, not yet in the engine's
 * tables; in submission order) may start, as a scheduler turn: engine_touch, task rows, spares
 * claimed. The caller then commits with engine_commit_touched and calls sched_fresh_go (or, if
 * that failed, sched_fresh_abandon) with the e->n_runs it read before. On an error nothing of it
 * is left (a savepoint, rolled back; the jobs untouched; the supervisors abandoned): the
 * submissions commit without it, and the scheduler starts them.
 * sched_fresh_go: "go" to the runs [first_fresh, n_runs) once their start is durable.
 * sched_fresh_abandon: end-of-file to them instead (no "go": their start was not durable); they
 * exit without running anything, their go-0 records removed.
 */
int sched_can_start_new(const engine *e);
rx_err sched_start_new(engine *e, ejob *const *jobs, size_t n);
void sched_fresh_go(engine *e, size_t first_fresh);
void sched_fresh_abandon(engine *e, size_t first_fresh);

/* Discard every spare supervisor (sched.c): they exit without a trace. Caller holds mu or is
 * the scheduler thread's last act. */
void sched_spares_discard(engine *e);

/* Wait for the supervisors told "k" to exit, reap them, free the list (engine_close, after the
 * scheduler thread stopped: they exit at once). */
void sched_reaps_finish(engine *e);

#endif
