/*
 * store.h - rxjobd's job store: one SQLite database, STATE_DIR/jobs.db, in WAL mode with
 * synchronous=FULL, so a committed transaction survives a crash of the daemon or the machine.
 *
 * The store is a thin typed layer over SQL: rows in, rows out, transactions. It decides nothing
 * (the engine does). Each call is thread-safe (a recursive mutex over the one connection), and a
 * transaction belongs to the thread that began it: store_begin holds the connection for that
 * thread until its store_commit succeeds or its store_rollback, so the engine's submission
 * leader can write and sync without the engine's mutex while other threads wait for the store.
 * One writer per state directory: store_open takes an exclusive lock on STATE_DIR/lock.
 */
#ifndef RX_STORE_STORE_H
#define RX_STORE_STORE_H

#include "rxjob.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct store store;

/* A row of the jobs table (schema.c). */
typedef struct store_job_row {
    int64_t id;
    uid_t uid;
    double created_s;
    double ended_s; /* 0 = not over */
    rx_job_status status;
    rx_work_kind kind;
    uint64_t n_tasks;
    unsigned num_tasks;
    unsigned task_chunk_size; /* function tasks one process runs in a row; 0 = the daemon's */
    int continue_on_failure;
    int64_t timeout_ms;
    int console_output;
    int auto_cleanup;
    int cancel_requested;
    int cleanup_requested;
    int64_t stop_task; /* -1 = none */
    int has_args;
} store_job_row;

/* A row of the tasks table. */
typedef struct store_task_row {
    int64_t job_id;
    uint64_t idx;
    int running; /* 1: started, not ended (state 0); 0: ended */
    pid_t shim_pid;
    uint64_t shim_start; /* /proc/PID/stat field 22 of the supervisor */
    pid_t pgid;          /* the task's process group, once known */
    double started_s;
    double ended_s;
    rx_task_state task_state;
    int exit_status;     /* or -1 */
    int signal;          /* or 0 */
    uint64_t result_run; /* 0: the result is t<idx>.result; k > 0: in t<k-1>.results (schema.c) */
    uint64_t result_off; /* ... at this byte */
    uint64_t result_len; /* ... this many bytes */
    uint64_t run_count;  /* a running row: the tasks idx .. idx + run_count - 1 its supervisor
                          * runs in a row (0 is read as 1); an ended row: 1 (schema.c v3) */
    const char *error;   /* or NULL; borrowed (by the store when loading, until the callback
                          returns) */
} store_task_row;

/* Per-job task totals, for loading jobs at start. */
typedef struct store_task_totals {
    int64_t job_id;
    uint64_t rows;
    uint64_t running;
    uint64_t ok;
    uint64_t failed;
    int64_t max_idx; /* -1 = no row */
} store_task_totals;

/* Bytes of zeros store_open writes (and syncs) into STATE_DIR/jobs.db-wal when there is none
 * (SQLite removes it at a clean close; one left by a crash is kept as it is, to be replayed):
 * a little more than the log grows to before SQLite's automatic checkpoint (1 000 pages of
 * 4 KiB, each with a 24-byte frame header), which then restarts it from the top. So a commit
 * overwrites blocks the file already has, and its fdatasync writes no metadata (a growing log
 * costs ext4 an allocation and an inode write per commit). SQLite reads a log whose header is
 * zeros as empty. */
#define STORE_WAL_PREFILL_BYTES (4608u * 1024u)

/* How long opening a store waits for its lock held by another process (store.c lock_dir). */
#define STORE_LOCK_WAIT_MS 1000

/* Open (creating) STATE_DIR/jobs.db, lock the state directory, write its log ahead of use
 * (STORE_WAL_PREFILL_BYTES; a failure there only logs), migrate the schema. RX_OK; RX_ESTORE
 * with why in errbuf (RX_EINVAL when another daemon holds the lock). */
rx_err store_open(const char *state_dir, store **out_store, char *errbuf, size_t errlen);

/* Close the database and release the lock. NULL-safe. */
void store_close(store *st);

/* The last SQLite error text. Borrowed until the next call on st. */
const char *store_errmsg(store *st);

/* Transactions. begin is BEGIN IMMEDIATE, and holds the connection for the calling thread until
 * commit succeeds or rollback (a rollback by a thread without a transaction does nothing; after
 * a failed commit, call rollback). RX_OK; RX_ESTORE. */
rx_err store_begin(store *st);
rx_err store_commit(store *st);
void store_rollback(store *st);

/* A savepoint inside a transaction, so one bad row does not doom the rows grouped with it. */
rx_err store_savepoint(store *st);
void store_savepoint_release(store *st);
void store_savepoint_rollback(store *st);

/* Insert a job (row->id ignored) with its spec and, if args != NULL, its arguments; the new id
 * goes to *out_id. RX_OK; RX_ESTORE. */
rx_err store_job_insert(store *st, const store_job_row *row, const void *spec, size_t spec_len,
                        const void *args, size_t args_len, int64_t *out_id);

/* Write a job's changing columns: status, ended_s, cancel_requested, cleanup_requested,
 * stop_task. RX_OK; RX_ESTORE. */
rx_err store_job_update(store *st, const store_job_row *row);

/* Delete a job, its arguments and its tasks. RX_OK; RX_ESTORE. */
rx_err store_job_delete(store *st, int64_t id);

/* Every job, oldest first. cb's row is borrowed for the call; a non-RX_OK return stops the walk
 * and is returned. */
typedef rx_err store_job_cb(const store_job_row *row, void *user);
rx_err store_jobs_each(store *st, store_job_cb *cb, void *user);

/* The job's spec blob: *out_blob owned (rx__free). RX_OK; RX_ENOENT; RX_ENOMEM; RX_ESTORE. */
rx_err store_job_spec(store *st, int64_t id, void **out_blob, size_t *out_len);

/* Write the job's argument blob to fd, in pieces (never whole in memory). RX_OK; RX_ENOENT (no
 * arguments); RX_EIO; RX_ESTORE. */
rx_err store_job_args_write(store *st, int64_t id, int fd);

/* Insert or replace a task row. RX_OK; RX_ESTORE. */
rx_err store_task_put(store *st, const store_task_row *row);

/* Delete a task row (a task that never started, found at recovery). RX_OK; RX_ESTORE. */
rx_err store_task_delete(store *st, int64_t job_id, uint64_t idx);

/* Task totals per job, for every job with a task row. */
typedef rx_err store_totals_cb(const store_task_totals *t, void *user);
rx_err store_task_totals_each(store *st, store_totals_cb *cb, void *user);

/* Task rows: every running one (job_id < 0), or every row of one job in index order. */
typedef rx_err store_task_cb(const store_task_row *row, void *user);
rx_err store_tasks_running_each(store *st, store_task_cb *cb, void *user);
rx_err store_tasks_of_job_each(store *st, int64_t job_id, store_task_cb *cb, void *user);

#endif
