/*
 * rxjob.h - the public API of rxjob: run work as jobs of tasks on a compute context.
 *
 * rxjob re-creates, in C, the remote-job model of Microsoft's revoscalepy: rx_exec submits a
 * piece of work (a C function or a command) as a job of one or more tasks, runs at most
 * num_tasks of them at once on a compute context, and hands back one result slot per task, in
 * task order. The words (job, task, work, compute context, artifacts) and the status rules are
 * those of docs/DESIGN.md sections 1 and 2 (the section numbers below refer to it).
 *
 * Conventions, for every function below unless its comment says otherwise:
 * - Fallible functions return rx_err: RX_OK (0) or a negative code (rx_strerror explains it).
 * - Output parameters are named out_*, come last, and are written only on success.
 * - Inputs are copied; the caller may free them when the call returns.
 * - A returned `const char *` is borrowed; its comment says what invalidates it.
 * - Destructors (`*_free`) accept NULL.
 * - Times are in seconds (double or int64_t, as named); sizes are in bytes.
 */
#ifndef RXJOB_H
#define RXJOB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define RX_API               __attribute__((visibility("default")))
#define RX_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define RX_API
#define RX_PRINTF(fmt, args)
#endif

#define RX_VERSION_MAJOR 0
#define RX_VERSION_MINOR 1
#define RX_VERSION_PATCH 0

/** The library's version as "MAJOR.MINOR.PATCH". Static storage; never NULL. Thread-safe. */
RX_API const char *rx_version(void);

/* ---------------------------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------------------------- */

/*
 * One list gives the enum, rx_strerror and rx_errname. Numbers are stable: a retired code keeps
 * its slot. Codes are negative; RX_OK is 0.
 * RX_ETOOBIG is a request over a size limit (rxjobd's body_bytes, argv_bytes, ... of
 * docs/protocol.md "Limits": the same request will never pass); RX_ELIMIT a limit on what the
 * caller has at once (queued_jobs_per_user: it passes once some of the caller's jobs end; HTTP
 * 429, as Slurm's MaxSubmitJobs refuses a submission).
 */
#define RX_ERR_MAP(X)                                                               \
    X(OK, 0, "success")                                                             \
    X(EINVAL, -1, "invalid argument")                                               \
    X(ENOMEM, -2, "out of memory")                                                  \
    X(ENOENT, -3, "no such job")                                                    \
    X(EIO, -4, "input/output error")                                                \
    X(ESTORE, -5, "job store error")                                                \
    X(ETIMEDOUT, -6, "operation timed out")                                         \
    X(ECONTEXT, -7, "compute context failure")                                      \
    X(ECOUNT, -8, "inconsistent task count: times_to_run disagrees with elem_args") \
    X(EJOBFAILED, -9, "job failed: at least one task failed")                       \
    X(ENOTFINISHED, -10, "job has not finished")                                    \
    X(ECANCELED, -11, "job was canceled")                                           \
    X(ENORESULTS, -12, "job results are gone: collected or cleaned up")             \
    X(ESYSTEM, -13, "system call failed")                                           \
    X(ETOOBIG, -14, "size limit exceeded")                                          \
    X(ENOTSUP, -15, "operation not supported by this compute context")              \
    X(EPERM, -16, "permission denied")                                              \
    X(ELIMIT, -17, "a per-user limit of the daemon was reached: try again later")

typedef enum rx_err {
#define RX_ERR_ENUM(name, code, msg) RX_##name = (code),
    RX_ERR_MAP(RX_ERR_ENUM)
#undef RX_ERR_ENUM
} rx_err;

/** Human-readable text of err ("out of memory"). Static storage; never NULL. Thread-safe. */
RX_API const char *rx_strerror(rx_err err);

/** Name of err as written in code ("RX_ENOMEM"). Static storage; never NULL. Thread-safe. */
RX_API const char *rx_errname(rx_err err);

/* ---------------------------------------------------------------------------------------------
 * Job status (DESIGN.md section 2; revoscalepy RxRemoteJobStatus)
 * ------------------------------------------------------------------------------------------- */

/** A job's status. Exactly one at any time; the numbers are stable (ABI). */
typedef enum rx_job_status {
    RX_JOB_QUEUED = 0,       /* accepted, no task started yet */
    RX_JOB_RUNNING = 1,      /* a task has started and the job is not over (also while canceling) */
    RX_JOB_FINISHED = 2,     /* every task ran to successful completion */
    RX_JOB_FAILED = 3,       /* at least one task failed */
    RX_JOB_CANCELED = 4,     /* canceled, and every task process is gone */
    RX_JOB_UNDETERMINED = 5, /* cannot be determined: cleaned up, unknown, or unreachable */
    RX_JOB_STATUS_COUNT
} rx_job_status;

/**
 * The status's name as revoscalepy's enum spells it: "QUEUED", "RUNNING", "FINISHED", "FAILED",
 * "CANCELED", "UNDETERMINED"; "INVALID" for a value outside the enum. Static; never NULL.
 * Thread-safe.
 */
RX_API const char *rx_job_status_name(rx_job_status status);

/**
 * Parse a status name, case-insensitively ("finished", "FINISHED").
 * @param name        NUL-terminated name. Borrowed.
 * @param out_status  On success, the status.
 * @return RX_OK; RX_EINVAL if name is NULL or names no status. Thread-safe.
 */
RX_API rx_err rx_job_status_parse(const char *name, rx_job_status *out_status);

/**
 * 1 if nothing but cleanup can follow status (FINISHED, FAILED, CANCELED, UNDETERMINED),
 * 0 for QUEUED and RUNNING and for values outside the enum. Thread-safe.
 */
RX_API int rx_job_status_is_terminal(rx_job_status status);

/* ---------------------------------------------------------------------------------------------
 * Work: what each task runs (DESIGN.md section 3)
 * ------------------------------------------------------------------------------------------- */

/** A running task, as a C function sees it. Owned by the library; valid during the call only. */
typedef struct rx_task rx_task;

/**
 * A C function run by each task. Read the task's argument with rx_task_arg, set its result with
 * rx_task_set_result, and return 0; or return non-zero (after rx_task_fail, to say why) to fail
 * the task. Whatever it writes to stdout and stderr (file descriptors 1 and 2) is the task's
 * console output. It may run in a forked worker process (local-parallel, or any time limit), so
 * changes it makes to the caller's memory are not seen by the caller there.
 */
typedef int rx_function(rx_task *task);

/**
 * The task's argument: element rx_task_index(task) of elem_args, or an empty buffer when the
 * job has no elem_args.
 * @param task     The running task.
 * @param out_len  If not NULL, receives the argument's length in bytes.
 * @return The argument's bytes, borrowed until the function returns; always followed by a NUL
 *         byte that is not counted in *out_len, so a text argument can be used as a C string.
 */
RX_API const void *rx_task_arg(const rx_task *task, size_t *out_len);

/** The task's index in the job, 0-based: its slot in the results. */
RX_API size_t rx_task_index(const rx_task *task);

/**
 * Set the task's result: a copy of len bytes at data (data may be NULL when len is 0). A later
 * call replaces an earlier one.
 * @return RX_OK; RX_ENOMEM; RX_ETOOBIG if len exceeds RX_RESULT_MAX_BYTES; RX_EINVAL if task is
 *         NULL or data is NULL with len > 0.
 */
RX_API rx_err rx_task_set_result(rx_task *task, const void *data, size_t len);

/** Set the result to a NUL-terminated string (without its NUL). Returns as rx_task_set_result. */
RX_API rx_err rx_task_set_result_str(rx_task *task, const char *str);

/**
 * Say why the task failed: the message becomes the task's error in its result slot. The
 * function must still return non-zero. printf-style; the message is cut at 4 096 bytes.
 * @return Always -1, so a function can end with `return rx_task_fail(task, "...")`.
 */
RX_API int rx_task_fail(rx_task *task, const char *fmt, ...) RX_PRINTF(2, 3);

/** The largest result one task may set, in bytes (256 MiB). */
#define RX_RESULT_MAX_BYTES ((size_t)256 * 1024 * 1024)

/** What kind of work a job runs. */
typedef enum rx_work_kind {
    RX_WORK_FUNCTION = 1, /* a C function (rx_function) */
    RX_WORK_COMMAND = 2   /* a program, run with argv */
} rx_work_kind;

/**
 * The work every task of a job runs. Build it with rx_work_function or rx_work_command, then set
 * the optional command fields. Every pointer is borrowed for the duration of rx_exec only.
 */
typedef struct rx_work {
    rx_work_kind kind;
    /* RX_WORK_FUNCTION */
    rx_function *function; /* the function; required */
    const char *name;      /* its registered name, for contexts in other processes; may be NULL */
    /* RX_WORK_COMMAND */
    const char *const *argv; /* NULL-terminated; argv[0] is looked up in PATH when it has no
                                '/'. Every "{}" inside an element is replaced by the task's
                                argument; when no element has "{}" and the job has elem_args,
                                the argument is appended as a last element (both as GNU
                                parallel does). No shell is involved, so the bytes arrive
                                as they are; an argument with a NUL byte is refused. */
    const char *const *env;  /* NULL-terminated "NAME=value" entries added to (and overriding)
                                the caller's environment; NULL = none */
    const char *cwd;         /* working directory of the task (must exist at submit);
                                NULL = the caller's (a server context refuses a caller's
                                directory that was removed: RX_EINVAL) */
    const void *stdin_data;  /* bytes every task reads on its standard input; NULL = /dev/null */
    size_t stdin_len;        /* length of stdin_data in bytes */
} rx_work;

/** Work that calls fn in each task. Never fails; fn must not be NULL for rx_exec to accept it. */
RX_API rx_work rx_work_function(rx_function *fn);

/**
 * Work that runs a command in each task. argv is borrowed (NULL-terminated). The task's
 * environment also gets RXJOB_TASK_INDEX (0-based), RXJOB_TASK_COUNT, and RXJOB_RESULT: the path
 * of a file whose contents, if the command writes it, become the task's result. A non-zero exit
 * status or a signal fails the task.
 */
RX_API rx_work rx_work_command(const char *const *argv);

/* ---------------------------------------------------------------------------------------------
 * Compute contexts (revoscalepy RxLocalSeq, RxLocalParallel)
 * ------------------------------------------------------------------------------------------- */

/** Where jobs run. Opaque; create with a constructor below, free with rx_context_free. */
typedef struct rx_context rx_context;

/**
 * The local context: tasks run one after the other, in the caller (revoscalepy RxLocalSeq).
 * Function tasks are called in the calling process, with its stdout and stderr redirected to the
 * task's output file during the call (so do not write to them from other threads meanwhile);
 * when the job has a time limit they run in a forked child instead, which the limit can stop.
 * Command tasks run as child processes, one at a time. rx_exec always waits.
 * @param out_ctx  On success, the new context; free it with rx_context_free.
 * @return RX_OK; RX_EINVAL if out_ctx is NULL; RX_ENOMEM.
 */
RX_API rx_err rx_local_context(rx_context **out_ctx);

/**
 * The local-parallel context: tasks run in n_workers processes at once on this host (revoscalepy
 * RxLocalParallel). Function tasks run in forked worker processes, each running up to
 * task_chunk_size tasks in a row; command tasks are spawned directly. rx_exec always waits.
 * Forking copies the caller: call rx_exec from a thread that holds no lock other threads need.
 * @param n_workers  The most task processes at once; 0 = the number of online CPUs.
 * @param out_ctx    On success, the new context; free it with rx_context_free.
 * @return RX_OK; RX_EINVAL if out_ctx is NULL or n_workers > RX_MAX_WORKERS; RX_ENOMEM.
 */
RX_API rx_err rx_local_parallel_context(unsigned n_workers, rx_context **out_ctx);

/** The most workers a local-parallel context may have. */
#define RX_MAX_WORKERS 4096u

/** The context's kind: "local", "local-parallel" or "server". Static; never NULL. */
RX_API const char *rx_context_name(const rx_context *ctx);

/**
 * How many tasks the context runs at once by default (1 for local; 0 for a server context: its
 * daemon's slots decide).
 */
RX_API unsigned rx_context_workers(const rx_context *ctx);

/**
 * Detail of the last failure of a call on ctx (for example "spawn 'x' failed: ..."), or "" if
 * none. Borrowed until the next call on ctx. Not thread-safe with other calls on ctx.
 */
RX_API const char *rx_context_errmsg(const rx_context *ctx);

/** Free a context. NULL is a no-op. No call on ctx may be running. */
RX_API void rx_context_free(rx_context *ctx);

/* ---------------------------------------------------------------------------------------------
 * rx_exec (revoscalepy rx_exec)
 * ------------------------------------------------------------------------------------------- */

/** A per-call override of a context setting: inherit it, or force it on or off. */
typedef enum rx_tristate {
    RX_INHERIT = 0, /* use the context's setting (the default) */
    RX_FALSE = 1,
    RX_TRUE = 2
} rx_tristate;

/** A byte buffer: one task's argument. data may be NULL when len is 0. Borrowed. */
typedef struct rx_buf {
    const void *data;
    size_t len;
} rx_buf;

/** The results of a job: one slot per task. Opaque; free with rx_results_free. */
typedef struct rx_results rx_results;

/** A handle on a job of a server context. Freeing it does not touch the job itself. */
typedef struct rx_job rx_job;

/**
 * Called for each task's result, in task order, from the thread that called rx_exec, by a context
 * that waits (a non-waiting rx_exec has no results to call it with).
 */
typedef void rx_task_callback(const rx_results *results, size_t index, void *user);

/**
 * Options of one rx_exec call. Zero-initialised fields mean the documented defaults, except
 * times_to_run, whose default is -1: start from RX_EXEC_OPTS_INIT or rx_exec_opts_init.
 */
typedef struct rx_exec_opts {
    size_t struct_size;              /* sizeof(rx_exec_opts); lets the struct grow */
    int64_t times_to_run;            /* number of tasks; -1 = derive it (DESIGN.md section 2) */
    const rx_buf *elem_args;         /* one argument per task; NULL = none. Borrowed. */
    size_t n_elem_args;              /* number of elements in elem_args */
    unsigned num_tasks;              /* the most tasks of this job at once (a cap: never more
                                        than the context's workers); 0 = the context's */
    unsigned task_chunk_size;        /* tasks one worker runs in a row. Function work: local
                                        parallel, a forked worker; a server, one exec of the
                                        program, rx_init looping; 0 = chosen by the library or
                                        the daemon. Command work on a server: one supervisor
                                        spawns that many commands one after the other (each
                                        still its own process, output, result, exit status and
                                        time limit); 0 or 1 = a supervisor per task. A server
                                        runs at most 10 000 in a row (more is taken as 10 000)
                                        and records a chunk's task ends when the chunk ends
                                        (docs/engine.md "Chunks"); ignored under an output cap
                                        and by the Slurm executor */
    rx_tristate continue_on_failure; /* RX_INHERIT = true, as in revoscalepy */
    double execution_timeout_s;      /* time limit of each task, seconds; 0 = none */
    rx_tristate console_output;      /* RX_TRUE: write each task's output, with a header, to the
                                        caller's stdout as soon as it and all earlier tasks are
                                        done; RX_INHERIT = false for local contexts */
    rx_task_callback *callback; /* called with each task's result, in task order; may be NULL */
    void *callback_user;        /* passed to callback; never read or freed by the library */
} rx_exec_opts;

#define RX_EXEC_OPTS_INIT                                        \
    {                                                            \
        .struct_size = sizeof(rx_exec_opts), .times_to_run = -1, \
    }

/** Set *opts to RX_EXEC_OPTS_INIT. opts must not be NULL. */
RX_API void rx_exec_opts_init(rx_exec_opts *opts);

/** The most tasks one job may have on a local context (10 000 000); rxjobd allows 1 000 000
 * per job (docs/protocol.md, "Limits"). */
#define RX_MAX_TASKS ((int64_t)10000000)

/** The longest time limit, in seconds (one year). */
#define RX_MAX_TIMEOUT_S (366.0 * 24 * 3600)

/**
 * Run work as a job of tasks on ctx (revoscalepy rx_exec). A context that waits (local ones
 * always; a server context with rx_context_set_wait(ctx, 1)) runs the job to its end and hands
 * back its results: one slot per task, in task order. A context that does not wait (a server
 * context, by default) hands back a job at once, durably recorded, as revoscalepy returns an
 * RxRemoteJob on a context with wait=False: QUEUED, or already RUNNING when an idle daemon
 * started its first tasks in the same commit (a task that then cannot start, such as a
 * program not found, ends FAILED from RUNNING, as under Slurm).
 *
 * Task count (DESIGN.md section 2): with elem_args, one task per element, and times_to_run must
 * be -1 or equal to n_elem_args; without, times_to_run tasks; with neither, 1 task on a local
 * context and num_tasks tasks (at least 1) on a server context. With continue_on_failure (the
 * default) every task runs even when some fail; without it, the first failure stops the job at
 * once: running tasks are stopped and no task starts after it (their slots say so).
 *
 * @param ctx          The compute context. Borrowed.
 * @param work         The work each task runs. Borrowed for the call; see rx_work.
 * @param opts         Options; NULL = RX_EXEC_OPTS_INIT.
 * @param out_results  Waiting context: on RX_OK and RX_EJOBFAILED, the results; free with
 *                     rx_results_free. Required there; ignored (may be NULL) otherwise.
 * @param out_job      Non-waiting context: on RX_OK, the new job; free with rx_job_free.
 *                     Required there; ignored (may be NULL) otherwise.
 * @return RX_OK: every task succeeded (job FINISHED), or the job was recorded (non-waiting).
 *         RX_EJOBFAILED: the job ran and at least one task failed (job FAILED); *out_results is
 *           set all the same, with each failed slot's error (revoscalepy's warning on collect).
 *         RX_EINVAL: NULL ctx or work, or the out parameter the context needs; a function work
 *           without a function (or, on a server context, not registered with RX_FUNCTION); a
 *           command with an empty argv; times_to_run < -1 or 0, over RX_MAX_TASKS; a negative,
 *           NaN or too large execution_timeout_s; a tristate out of range; a struct_size smaller
 *           than the first release's; a cwd that is not a directory (server context: or no
 *           cwd while the caller's current directory was removed); elem_args given with
 *           n_elem_args 0 (a job with no task), or NULL with n_elem_args > 0; for a command, an
 *           argument with a NUL byte, or an env entry that is not NAME=value, sets an RXJOB_*
 *           name, or repeats a name. Nothing runs.
 *         RX_ECOUNT: times_to_run disagrees with n_elem_args. Nothing runs.
 *         RX_ENOMEM; RX_ESYSTEM: the job could not be set up (temporary directory, fork, pipe);
 *           tasks already started have been stopped. RX_ECONTEXT: the daemon could not be
 *           reached or started, or (server context) libcurl or libcrypto could not be loaded
 *           (rx_server_context). Server contexts also: the daemon's own refusals, RX_EINVAL
 *           (a bad value), RX_ETOOBIG (over one of the daemon's size limits: body_bytes,
 *           argv_count, argv_bytes, env_count, env_bytes, stdin_bytes, tasks_per_job of
 *           docs/protocol.md "Limits"; the message names it), RX_ELIMIT (the caller already has
 *           queued_jobs_per_user jobs not yet ended: retry once some end), RX_ESTORE (it could
 *           not record the job); and, when waiting,
 *           RX_ECANCELED (the job was canceled meanwhile). rx_context_errmsg(ctx) says which
 *           call failed and why.
 * Thread safety: calls on different contexts may run concurrently; calls on one context must
 * not overlap.
 */
RX_API rx_err rx_exec(rx_context *ctx, const rx_work *work, const rx_exec_opts *opts,
                      rx_results **out_results, rx_job **out_job);

/* ---------------------------------------------------------------------------------------------
 * Results: one slot per task, in task order (revoscalepy's results list)
 * ------------------------------------------------------------------------------------------- */

/** How one task ended. */
typedef enum rx_task_state {
    RX_TASK_OK = 0,           /* ran to successful completion; the slot holds its value */
    RX_TASK_ERROR = 1,        /* the function returned non-zero; the slot holds its message */
    RX_TASK_EXIT = 2,         /* the command exited with a non-zero status */
    RX_TASK_SIGNALED = 3,     /* the process was killed by a signal */
    RX_TASK_TIMEOUT = 4,      /* it hit its time limit and was stopped */
    RX_TASK_START_FAILED = 5, /* could not start: no such program, cwd, ... */
    RX_TASK_LOST = 6,         /* its process vanished without an exit record */
    RX_TASK_NOT_RUN = 7,      /* never started: the job stopped first (continue_on_failure off) */
    RX_TASK_STOPPED = 8,      /* started, then stopped because the job stopped */
    RX_TASK_STATE_COUNT
} rx_task_state;

/** The state's name: "OK", "ERROR", "EXIT", "SIGNALED", "TIMEOUT", ... Static; never NULL. */
RX_API const char *rx_task_state_name(rx_task_state state);

/** Number of slots (= tasks of the job). 0 for NULL. */
RX_API size_t rx_results_count(const rx_results *res);

/** The job's final status: RX_JOB_FINISHED or RX_JOB_FAILED. RX_JOB_UNDETERMINED for NULL. */
RX_API rx_job_status rx_results_status(const rx_results *res);

/** Number of slots whose task failed (state other than RX_TASK_OK). */
RX_API size_t rx_results_failed(const rx_results *res);

/** How task index ended. RX_TASK_NOT_RUN for NULL res or an index out of range. */
RX_API rx_task_state rx_results_state(const rx_results *res, size_t index);

/**
 * The task's value (what it set with rx_task_set_result, or wrote to $RXJOB_RESULT).
 * @param out_len  If not NULL, receives the length in bytes (0 when the slot holds an error).
 * @return The bytes, followed by a NUL not counted in *out_len; borrowed until rx_results_free.
 *         NULL when the slot holds an error or the index is out of range.
 */
RX_API const void *rx_results_value(const rx_results *res, size_t index, size_t *out_len);

/**
 * The task's error message, for example "exit status 2", "killed by signal 9 (SIGKILL)",
 * "time limit of 2 s exceeded", "command not found: 'nosuch'", or the function's rx_task_fail
 * text. NULL when the task succeeded or the index is out of range. Borrowed until
 * rx_results_free.
 */
RX_API const char *rx_results_error(const rx_results *res, size_t index);

/** The command's exit status (0..255), or -1 if it did not exit normally or is no command. */
RX_API int rx_results_exit_status(const rx_results *res, size_t index);

/** The signal that killed the task's process, or 0. */
RX_API int rx_results_signal(const rx_results *res, size_t index);

/** Seconds the task ran (CLOCK_MONOTONIC), or 0 if it never started. */
RX_API double rx_results_elapsed_s(const rx_results *res, size_t index);

/** Size of the task's captured console output (stdout and stderr together), in bytes. */
RX_API uint64_t rx_results_output_size(const rx_results *res, size_t index);

/**
 * Copy the task's console output to out, in 64 KiB pieces (never whole in memory).
 * @return RX_OK; RX_EINVAL for NULL arguments or an index out of range; RX_EIO if reading the
 *         captured output or writing to out failed.
 */
RX_API rx_err rx_results_write_output(const rx_results *res, size_t index, FILE *out);

/**
 * Copy the console output of every task to out, in task order, each preceded by a header line
 * "==> task N <==" (as tail(1) heads several files). Returns as rx_results_write_output.
 */
RX_API rx_err rx_results_write_all_output(const rx_results *res, FILE *out);

/** Free the results and their captured output. NULL is a no-op. */
RX_API void rx_results_free(rx_results *res);

/* ---------------------------------------------------------------------------------------------
 * The server compute context and jobs (revoscalepy RxRemoteJob and the job functions)
 * ------------------------------------------------------------------------------------------- */

/**
 * The server context: jobs run in rxjobd and outlive the caller (DESIGN.md section 4).
 *
 * @param url      NULL = the per-user daemon: the socket $RXJOB_SOCKET, else
 *                 $XDG_RUNTIME_DIR/rxjob/rxjobd.sock, else /tmp/rxjob-$UID/rxjobd.sock; when
 *                 nothing answers there, the library starts rxjobd (found as $RXJOB_DAEMON,
 *                 else next to the running program, else the build tree's, else in PATH) with
 *                 its store in $RXJOB_STATE_DIR (else $XDG_STATE_HOME/rxjob, else
 *                 ~/.local/state/rxjob) and waits until it answers, as task-spooler does.
 *                 "unix:/path/to/socket" = that daemon, never started by the library.
 *                 "https://HOST:PORT" (HOST a name, an IPv4 address or [IPv6]; no path) = a
 *                 daemon serving TCP (rxjobd --listen, rxjobd(8)), never started by the
 *                 library. TLS always, the daemon's certificate verified (name included)
 *                 against the PEM file $RXJOB_CA_FILE, else the system's CA store; never
 *                 without verification, never plain http. Every request carries
 *                 "Authorization: Bearer TOKEN": TOKEN is $RXJOB_TOKEN, else the first line of
 *                 the file $RXJOB_TOKEN_FILE, which must belong to the caller and be closed to
 *                 group and others (mode 0600 or 0400), as ssh wants of a private key; 32..512
 *                 characters of A-Z a-z 0-9 - . _ ~ + / then optional '='. The daemon maps the
 *                 token to a user, who is then the caller as a peer uid is on a socket. The
 *                 token and CA are read here, once.
 * @param out_ctx  On success, the context; free with rx_context_free.
 * Defaults: wait false (rx_exec returns a job at once), console_output false, auto_cleanup true,
 * as revoscalepy's remote contexts.
 * @return RX_OK; RX_EINVAL for a malformed url (http://, a path, no port) or NULL out_ctx;
 *         RX_EPERM for an https url without a token, a malformed token, or a token file that
 *         is another user's or open to group or others; RX_EIO when the token file cannot be
 *         read; RX_ENOMEM. Each failure's reason is logged at RX_LOG_ERROR (there is no
 *         context yet for rx_context_errmsg). No connection is made here: the first call that
 *         needs the daemon connects (and starts it, for the per-user daemon only). Nor is
 *         libcurl or libcrypto loaded here: the library dlopen()s them (libcurl.so.4 and
 *         libcrypto.so.3 on Debian, the build's RX_CURL_SONAME and RX_CRYPTO_SONAME) when a
 *         server context first needs them, once per process; when one cannot be loaded, every
 *         call that needs it fails with RX_ECONTEXT and rx_context_errmsg names the library and
 *         the loader's reason. Over https,
 *         a request the daemon refuses for want of a known token fails with RX_EPERM (HTTP
 *         401), and a certificate that does not verify with RX_ECONTEXT naming the TLS failure
 *         in rx_context_errmsg.
 */
RX_API rx_err rx_server_context(const char *url, rx_context **out_ctx);

/**
 * Context settings (revoscalepy's compute context parameters). wait: rx_exec blocks until the
 * job is over and returns its results (local contexts always wait: setting 0 on them is
 * RX_ENOTSUP). console_output: print each task's output when results are collected.
 * auto_cleanup: remove the job's artifacts once its results are collected.
 * @return RX_OK; RX_EINVAL for a NULL ctx; RX_ENOTSUP as said.
 */
RX_API rx_err rx_context_set_wait(rx_context *ctx, int wait);
RX_API rx_err rx_context_set_console_output(rx_context *ctx, int on);
RX_API rx_err rx_context_set_auto_cleanup(rx_context *ctx, int on);

/** The job's id: a positive integer, unique in its daemon's state directory. */
RX_API int64_t rx_job_id(const rx_job *job);

/**
 * A handle on job id of ctx (revoscalepy RxRemoteJob.deserialize_job). Makes no request: an id
 * the daemon does not know reads UNDETERMINED.
 * @param ctx  Borrowed: must outlive the handle. A server context.
 * @return RX_OK; RX_EINVAL for id <= 0 or NULL arguments; RX_ENOTSUP on local contexts;
 *         RX_ENOMEM.
 */
RX_API rx_err rx_job_open(rx_context *ctx, int64_t id, rx_job **out_job);

/** Free a handle (the job is untouched). NULL is a no-op. */
RX_API void rx_job_free(rx_job *job);

/**
 * The job's status now (revoscalepy rx_get_job_status). A pure query. UNDETERMINED for a job
 * whose artifacts are gone (collected with auto-cleanup, cleaned up), an id the daemon does not
 * know, or a daemon that cannot be reached. Never starts a daemon. Thread-safe for distinct jobs.
 */
RX_API rx_job_status rx_get_job_status(rx_job *job);

/** How far the job is: tasks by phase, and when it was created and ended. */
typedef struct rx_job_progress {
    size_t n_tasks;
    size_t pending;
    size_t running;
    size_t ok;
    size_t failed;
    double created_s; /* when the job was submitted, UTC seconds since the epoch; 0 = unknown */
    double ended_s;   /* when it ended, UTC seconds since the epoch; 0 = not over, or unknown */
} rx_job_progress;

/**
 * The job's status and task counts in one request.
 * @return RX_OK; RX_ENOENT (status UNDETERMINED); RX_ECONTEXT (unreachable).
 */
RX_API rx_err rx_job_get_progress(rx_job *job, rx_job_status *out_status,
                                  rx_job_progress *out_progress);

/**
 * Block until the job is not QUEUED or RUNNING (revoscalepy rx_wait_for_job). Returns at once for
 * a job that is over or unknown.
 * @param timeout_s  Seconds to wait at most; < 0 = forever.
 * @return RX_OK (the job is over, or UNDETERMINED); RX_ETIMEDOUT; RX_ECONTEXT (unreachable).
 */
RX_API rx_err rx_wait_for_job(rx_job *job, double timeout_s);

/**
 * Cancel the job (revoscalepy rx_cancel_job). Running tasks get SIGTERM on their process group,
 * SIGKILL after the grace period; queued tasks never start. The job reads RUNNING until every
 * task process is gone, then CANCELED. Its results and output are removed.
 * @param out_canceled  1 if the job was QUEUED or RUNNING and is now being canceled; 0 if it was
 *                      already over or unknown (nothing changed). May be NULL.
 * @return RX_OK; RX_ECONTEXT (unreachable).
 */
RX_API rx_err rx_cancel_job(rx_job *job, int *out_canceled);

/**
 * Collect the job's results (revoscalepy rx_get_job_results). Never waits.
 * @param console_output  RX_TRUE: write every task's output (with headers) to stdout first;
 *                        RX_INHERIT: the job's setting.
 * @param auto_cleanup    RX_TRUE: remove the job's artifacts (the job becomes UNDETERMINED);
 *                        RX_INHERIT: the job's setting. Of two racing collectors exactly one
 *                        gets the results.
 * @param out_results     On RX_OK and RX_EJOBFAILED, one slot per task in task order (no
 *                        console output inside: rx_results_write_output writes nothing).
 * @return RX_OK (FINISHED); RX_EJOBFAILED (FAILED: results set, failed slots hold their errors;
 *         a warning is logged); RX_ENOTFINISHED (QUEUED or RUNNING); RX_ECANCELED; RX_ENORESULTS
 *         (collected, cleaned up or unknown); RX_ECONTEXT. Nothing is deleted on failure.
 */
RX_API rx_err rx_get_job_results(rx_job *job, rx_tristate console_output, rx_tristate auto_cleanup,
                                 rx_results **out_results);

/**
 * Write the console output of every task to out, in task order, each preceded by
 * "==> task N <==" (revoscalepy rx_get_job_output). Partial while the job runs; nothing for a job
 * whose artifacts are gone. Never consumes; streamed, never whole in memory.
 * @return RX_OK; RX_EIO (writing to out failed); RX_ECONTEXT.
 */
RX_API rx_err rx_get_job_output(rx_job *job, FILE *out);

/**
 * Clean up jobs (revoscalepy rx_cleanup_jobs): FAILED and CANCELED jobs are removed; a FINISHED
 * one only with force (else a warning naming force and rx_get_job_results); QUEUED and RUNNING
 * ones are skipped with a warning, or with force canceled then removed; UNDETERMINED ones are a
 * silent no-op. Warnings go to the log sink (rx_set_log).
 * @param out_cleaned  If not NULL, how many jobs were removed.
 * @return RX_OK (even when some were kept); RX_EINVAL for NULL jobs with n > 0; RX_ECONTEXT.
 */
RX_API rx_err rx_cleanup_jobs(rx_job *const *jobs, size_t n, int force, size_t *out_cleaned);

/** Which jobs rx_get_jobs lists. Zero-initialise, then set what matters. */
typedef struct rx_job_filter {
    unsigned states; /* bit (1u << status) per wanted status; 0 = every status */
    double since_s;  /* created at or after, UTC seconds since the epoch; 0 = no bound */
    double until_s;  /* created at or before, UTC seconds; 0 = no bound */
} rx_job_filter;

/**
 * The caller's jobs on ctx whose artifacts still exist, oldest first (revoscalepy rx_get_jobs).
 * @param filter    NULL = all.
 * @param out_jobs  On RX_OK, an array of *out_n handles (NULL when 0); free with rx_jobs_free.
 * @return RX_OK; RX_EINVAL; RX_ENOTSUP on local contexts; RX_ECONTEXT; RX_ENOMEM.
 */
RX_API rx_err rx_get_jobs(rx_context *ctx, const rx_job_filter *filter, rx_job ***out_jobs,
                          size_t *out_n);

/** Free an array from rx_get_jobs and its handles. NULL is a no-op. */
RX_API void rx_jobs_free(rx_job **jobs, size_t n);

/* ---------------------------------------------------------------------------------------------
 * The daemon (rxjobd) behind a server context
 * ------------------------------------------------------------------------------------------- */

/** One of a daemon's limits (protocol.md "Limits"; set with `rxjobd --limit NAME=VALUE`). */
typedef struct rx_daemon_limit {
    char *name;     /* "argv_bytes", "queued_jobs_per_user", ... */
    uint64_t value; /* in unit; output_bytes 0 = no cap */
    char *unit;     /* "bytes", "elements", "entries", "tasks" or "jobs" */
} rx_daemon_limit;

/**
 * What a daemon says about itself (protocol.md GET /v1/daemon), or that none answers. Its strings
 * are never NULL and belong to it: rx_daemon_info_free frees them all.
 */
typedef struct rx_daemon_info {
    int running;      /* 1: a daemon answered; 0: none did, and only socket and why are set */
    char *socket;     /* the socket asked (the daemon's own path when it answered) */
    char *why;        /* running 0: why not ("connect to '...' failed: ..."); else "" */
    char *version;    /* rxjobd's version, "0.1.0"; "" when not running */
    int64_t pid;      /* its process id; 0 when not running */
    char *executor;   /* "local" or "slurm"; "" when not running */
    unsigned slots;   /* the most task processes it runs at once */
    char *state_dir;  /* its state directory; "" when not running */
    double started_s; /* when it started, UTC seconds since the epoch */
    size_t jobs[RX_JOB_STATUS_COUNT]; /* its jobs by status (UNDETERMINED: always 0) */
    size_t tasks_running;             /* task processes running now */
    int hold;                         /* 1: it accepts jobs but starts no task (benchmarks) */
    rx_daemon_limit *limits;          /* its limits, n_limits of them (NULL when 0), in the
                                         daemon's order */
    size_t n_limits;
} rx_daemon_info;

/**
 * Ask a daemon about itself. Never starts one: a daemon that does not answer is reported as not
 * running, which is an answer, not an error.
 * @param url       As rx_server_context's: NULL = the per-user daemon ($RXJOB_SOCKET, ...);
 *                  "unix:/path/to/socket"; "https://HOST:PORT" (with a token, as there).
 * @param out_info  On RX_OK, the answer; free with rx_daemon_info_free.
 * @return RX_OK; RX_EINVAL for a malformed url or NULL out_info; RX_EPERM (no usable token, as
 *         rx_server_context; or the daemon answered 401/403); RX_EIO (the token file cannot be
 *         read); RX_ECONTEXT when something answered, but not as rxjobd does, or TLS failed,
 *         or libcurl could not be loaded (rx_server_context) (the reason of each is logged at
 *         RX_LOG_ERROR); RX_ENOMEM.
 * Thread-safe.
 */
RX_API rx_err rx_daemon_get_info(const char *url, rx_daemon_info **out_info);

/** Free what rx_daemon_get_info returned. NULL is a no-op. */
RX_API void rx_daemon_info_free(rx_daemon_info *info);

/**
 * Ask a daemon to stop (protocol.md POST /v1/daemon/stop) and wait until it no longer answers
 * and its process has exited (so a daemon started next finds its lock free). Its running tasks
 * go on under their supervisors and are adopted at its next start. Never starts a daemon.
 * @param url              As rx_server_context's. For an https url, "gone" means its TCP
 *                         listener refuses connections (its process may run on another host).
 * @param timeout_s        Seconds to wait for it to be gone at most; < 0 = forever.
 * @param out_was_running  If not NULL: 1 if a daemon answered (and is now gone), 0 if none did
 *                         (nothing to stop: still RX_OK).
 * @return RX_OK; RX_EINVAL for a malformed url; RX_ETIMEDOUT (it still runs); RX_EPERM when it
 *         refused (only its own user or root may stop it; over https, a token of such a user),
 *         or for want of a usable token (as rx_server_context); RX_EIO (the token file cannot
 *         be read); RX_ECONTEXT when it answered oddly, or libcurl could not be loaded
 *         (rx_server_context) (the reason of either is logged at RX_LOG_ERROR); RX_ENOMEM.
 * Thread-safe.
 */
RX_API rx_err rx_daemon_stop(const char *url, double timeout_s, int *out_was_running);

/* ---------------------------------------------------------------------------------------------
 * C functions in other processes (DESIGN.md section 3)
 * ------------------------------------------------------------------------------------------- */

/**
 * Register fn under name, so that a server or Slurm context can run it: the daemon runs this
 * same program again with the task handed over, and rx_init runs it. Usually called through
 * RX_FUNCTION, before main. A later registration of the same name replaces the earlier one.
 * @param name  1..128 bytes of [A-Za-z0-9_.-]; copied.
 * @return RX_OK; RX_EINVAL; RX_ENOMEM. Not thread-safe: register before starting threads.
 */
RX_API rx_err rx_register_function(const char *name, rx_function *fn);

/**
 * Define and register a task function in one go:
 *     RX_FUNCTION(greet) { return rx_task_set_result_str(task, "hi") == RX_OK ? 0 : -1; }
 * defines `static int greet(rx_task *task)` and registers it as "greet" before main runs.
 */
#define RX_FUNCTION(fname)                                              \
    static int fname(rx_task *task);                                    \
    __attribute__((constructor)) static void rx__register_##fname(void) \
    {                                                                   \
        (void)rx_register_function(#fname, fname);                      \
    }                                                                   \
    static int fname(rx_task *task)

/**
 * Call first thing in main, as an MPI program calls MPI_Init. In a normal run it returns at once
 * and changes nothing. When the program was started by rxjobd to run tasks ($RXJOB_FUNCTION
 * set), it runs the registered function on each task's argument: one task, or a chunk of
 * consecutive tasks in a row (task_chunk_size; docs/engine.md), writes each result or error
 * where the daemon reads them, and exits: 0 if the function returned 0 (for a chunk: the
 * daemon learns each task's outcome over a pipe), 1 if it failed, 127 if no function has that
 * name. Never returns in that case.
 */
RX_API void rx_init(int *argc, char ***argv);

/* ---------------------------------------------------------------------------------------------
 * Memory and logging
 * ------------------------------------------------------------------------------------------- */

/** Free memory the library returned as `char *` or `void *` to the caller. NULL is a no-op. */
RX_API void rx_free(void *ptr);

typedef enum rx_log_level {
    RX_LOG_ERROR = 0,
    RX_LOG_WARN = 1,
    RX_LOG_INFO = 2,
    RX_LOG_DEBUG = 3
} rx_log_level;

/** A log sink: msg is one line without its newline, borrowed for the call. */
typedef void rx_log_fn(rx_log_level level, const char *msg, void *user);

/**
 * Install the log sink (NULL = none, the default: the library prints nothing). Warnings go
 * there: when results with failed tasks are collected (revoscalepy's warning), "job failed: 3
 * of 20 tasks failed; first: task 13: ..." on local contexts and "collecting results of job 7:
 * 3 of 20 tasks failed" on a server context; and those of rx_cleanup_jobs. Not thread-safe with
 * running library calls: install it once, at start.
 */
RX_API void rx_set_log(rx_log_fn *fn, void *user);

#ifdef __cplusplus
}
#endif

#endif /* RXJOB_H */
