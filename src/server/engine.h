/*
 * engine.h - rxjobd's job engine: the store (SQLite + spool), the scheduler, the local
 * executor and recovery at start. The HTTP layer (http.c, api_jobs.c) calls only this; the
 * engine knows nothing of HTTP or JSON. Every function is thread-safe (the HTTP layer calls
 * them from one thread per connection).
 *
 * Jobs are identified by (uid, id): a job of another uid answers RX_ENOENT, exactly as an
 * unknown id does (root, uid 0, sees every job). The status rules are src/core/status.c's.
 */
#ifndef RX_SERVER_ENGINE_H
#define RX_SERVER_ENGINE_H

#include "rxjob.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct engine engine;

/* The environment variable in which rxjobd passes the umask it was started with (octal) to the
 * task supervisors: the daemon itself runs with umask 077, the tasks with the user's. The
 * supervisor applies it and removes it from the tasks' environment. */
#define ENGINE_TASK_UMASK_ENV "RXJOBD_TASK_UMASK"

typedef struct engine_opts {
    const char *state_dir; /* holds jobs.db and spool/; created (0700) if missing */
    unsigned slots;        /* the most task processes at once, daemon-wide; >= 1 */
    int hold;              /* 1: accept and store jobs but start no task (benchmarks) */
    int64_t grace_ms;      /* SIGTERM -> SIGKILL delay for cancel and time limits */
    const char *self_exe;  /* path of this program (rxjobd) */
    const char *shim_exe;  /* the task supervisor binary (src/shim); NULL = $RXJOBD_SHIM, else
                              rxjob-shim next to self_exe (exec_local_shim_open). The local
                              executor opens it at start and runs that file even once it is
                              replaced or removed; the Slurm executor runs it by this path */
    const char *executor;  /* "local" (NULL too) or "slurm" (exec_slurm.h, docs/slurm.md) */
    int64_t poll_ms;       /* slurm: how often squeue is asked, ms; 0 = 1000 */
    const struct rx_limits *limits; /* limits.h; NULL = rx_limits_default(); copied */
    int system; /* 1: rxjobd --system: each task runs as its job's uid (exec_local.h); the
                   daemon must be root and the executor local. 0: every task runs as the
                   daemon's own user. */
} engine_opts;

/* What a job runs and how: everything a submission carries, already decoded and validated
 * for types by the HTTP layer. Byte strings are NUL-terminated copies (argv, env, cwd cannot
 * hold NUL). The engine copies what it keeps. */
typedef struct engine_spec {
    uid_t uid;
    rx_work_kind kind;
    char **argv;         /* command: NULL-terminated. function: argv[0] = exe, argv[1] = NULL */
    char *function_name; /* function work only */
    char **env;          /* NULL-terminated "NAME=value", or NULL */
    char *cwd;           /* or NULL */
    void *stdin_data;    /* or NULL */
    size_t stdin_len;
    rx_buf *args; /* one per task, or NULL */
    size_t n_args;
    int has_args;             /* elem_args was given (possibly empty: then RX_EINVAL) */
    int64_t times_to_run;     /* -1 = derive */
    unsigned num_tasks;       /* 0 = the daemon's slots */
    unsigned task_chunk_size; /* function tasks one process runs in a row; 0 = the daemon's */
    int continue_on_failure;
    double execution_timeout_s; /* 0 = none */
    int console_output;
    int auto_cleanup;
} engine_spec;

/* A job as the API shows it (the job object of docs/protocol.md). */
typedef struct engine_job {
    int64_t id;
    uid_t uid;
    rx_job_status status; /* never UNDETERMINED: a gone job is RX_ENOENT */
    rx_work_kind kind;
    size_t n_tasks;
    size_t pending, running, ok, failed;
    double created_s; /* UTC seconds */
    double ended_s;   /* 0 = not over */
    int console_output;
    int auto_cleanup;
    int cancel_requested;
} engine_job;

/* One result slot (protocol.md "collect results"). */
typedef struct engine_slot {
    rx_task_state state;
    int exit_status; /* a command's exit status (0 for OK), or -1 (no exit, or function work) */
    int signal;      /* or 0 */
    char *error;     /* NULL when ok */
    void *value;     /* in memory, NUL-terminated; NULL when failed, or when the value is in its
                        file (engine_results.values_dir): the engine never loads values */
    size_t value_len;
    double started_s, ended_s; /* UTC seconds the task started and ended; 0 = never started */
    uint64_t result_run; /* 0: the value is values_dir/t<i>.result; k > 0: result_len bytes at */
    uint64_t result_off; /* result_off of values_dir/t<k-1>.results (a chunk's results file) */
    uint64_t result_len;
} engine_slot;

struct ejob;

typedef struct engine_results {
    engine_job job;
    size_t n;
    engine_slot *slots;
    /* The job's spool directory: an OK slot whose value is NULL holds the bytes of the file
     * values_dir/t<i>.result (store/spool.h; no file = an empty value), to be read in pieces
     * with spool_open_read while the results are held. NULL = none. */
    char *values_dir;
    /* Private: the claim that engine_results_end releases. */
    struct engine *engine;
    struct ejob *pinned;
    int cleanup;
} engine_results;

/*
 * End a collection and free res (NULL-safe). delivered: the whole body reached the client.
 * Until this call the job's spool is kept (the values stay readable even if the job is cleaned
 * up meanwhile) and, with cleanup, the job is hidden from everyone else. With cleanup and
 * delivered, the job stays hidden and is deleted by the engine's next transaction, 5 ms later
 * at most (sched.h, engine_deletes_write; with the Slurm executor, or while the engine stops,
 * here and now); without delivery it is visible again and nothing is deleted (protocol.md: a
 * failed call deletes nothing). RX_OK; RX_ESTORE (a deletion here and now failed: the job is
 * kept, visible again; a later one that fails is tried again, the job hidden meanwhile).
 */
rx_err engine_results_end(engine_results *res, int delivered);

/* engine_results_end(res, 0): nothing was delivered. */
void engine_results_free(engine_results *res);

/* Open the store, reconcile it with reality (DESIGN.md section 4 "Recovery"), start the
 * scheduler thread. errbuf gets a one-line reason on failure. RX_OK; RX_EINVAL; RX_ESTORE;
 * RX_ESYSTEM. */
rx_err engine_open(const engine_opts *opts, engine **out_engine, char *errbuf, size_t errlen);

/* The limits the engine was opened with (limits.h). Never NULL; valid until engine_close. */
const struct rx_limits *engine_limits(const engine *e);

/* Stop the scheduler and close the store. Running tasks go on under their supervisors and are
 * adopted by the next engine_open. NULL-safe. */
void engine_close(engine *e);

/* Create a job: validate (run-count rules, limits), commit it (group commit: concurrent callers
 * share one transaction and fsync), then let the scheduler see it. On RX_OK the job is durable
 * and *out_job describes it. RX_EINVAL / RX_ECOUNT with why; RX_ETOOBIG over a size limit and
 * RX_ELIMIT when spec->uid has queued_jobs_per_user jobs not yet ended, why naming the limit
 * (rx_limits_why); RX_ESTORE. */
rx_err engine_submit(engine *e, const engine_spec *spec, engine_job *out_job, char *why,
                     size_t why_len);

/* The job's state now. RX_OK; RX_ENOENT. */
rx_err engine_get(engine *e, uid_t uid, int64_t id, engine_job *out_job);

/* Block until the job is not QUEUED/RUNNING or timeout_ms passes (then RX_ETIMEDOUT, with
 * *out_job filled all the same). RX_OK; RX_ENOENT. */
rx_err engine_wait(engine *e, uid_t uid, int64_t id, int64_t timeout_ms, engine_job *out_job);

/* Cancel (DESIGN.md section 2 rx_cancel_job): *out_canceled = 1 if the job was QUEUED or
 * RUNNING and is now being canceled, else 0 and nothing changes. RX_OK; RX_ENOENT. */
rx_err engine_cancel(engine *e, uid_t uid, int64_t id, int *out_canceled, engine_job *out_job);

/* Collect results (rx_get_job_results). auto_cleanup: -1 = the job's own setting, 0, 1. The
 * slots come with their states, errors and times; the values stay in their files
 * (engine_results.values_dir), to be streamed by the caller, never whole in memory. With
 * cleanup, the job is claimed at once: of two racing callers one gets RX_OK, the other
 * RX_ENOENT; it is deleted only by engine_results_end(res, 1) once the body was delivered.
 * RX_OK; RX_ENOENT; RX_ENOTFINISHED; RX_ECANCELED; RX_ENOMEM; RX_ESTORE. */
rx_err engine_get_results(engine *e, uid_t uid, int64_t id, int auto_cleanup,
                          engine_results **out_results);

/* The paths of the job's per-task output files, in task order (a task not started yet has a
 * path that does not exist yet). The caller streams them with "==> task N <==" headers and frees
 * the array and each string with free(). RX_OK; RX_ENOENT; RX_ENOMEM. */
rx_err engine_output_paths(engine *e, uid_t uid, int64_t id, char ***out_paths, size_t *out_n);

/* Clean up (rx_cleanup_jobs for one job). *out_cleaned = 1 if removed; else 0 and warning
 * says why (FINISHED without force: cleaning it up would delete its results, names force and
 * rx_get_job_results; QUEUED/RUNNING without force). With force a QUEUED/RUNNING job is
 * canceled, then removed once its processes are gone. RX_OK; RX_ENOENT; RX_ESTORE. */
rx_err engine_cleanup(engine *e, uid_t uid, int64_t id, int force, int *out_cleaned, char *warning,
                      size_t warning_len);

/* List the uid's jobs (all jobs for root), oldest first. states: bit (1 << status) set for
 * each wanted status, 0 = all. since_s / until_s: creation-time window in UTC seconds, 0 =
 * unbounded. *out_jobs is malloc'd (free()), possibly NULL with *out_n = 0. */
rx_err engine_list(engine *e, uid_t uid, unsigned states, double since_s, double until_s,
                   engine_job **out_jobs, size_t *out_n);

typedef struct engine_stats {
    size_t jobs_by_status[RX_JOB_STATUS_COUNT];
    size_t tasks_running;
    uint64_t submissions_total;
    uint64_t tasks_started_total;
    unsigned slots;
    int hold;
    const char *executor; /* "local" or "slurm"; static storage */
} engine_stats;

void engine_get_stats(engine *e, engine_stats *out_stats);

/* Why the last engine call of this thread failed with RX_ESTORE, RX_ESYSTEM, RX_EIO or
 * RX_ENOMEM, with the cause ("store: update job failed: database or disk is full"); "" when
 * there is nothing to add to rx_strerror. Thread-local storage, valid until the thread's next
 * engine call. */
const char *engine_errmsg(void);

#endif
