/*
 * store.c - the SQLite job store (see store.h; tables in schema.c).
 *
 * Every statement, BEGIN and COMMIT included, is prepared once at open and reset after use. WAL
 * mode lets readers (the sqlite3 shell, a backup) look while the daemon writes; synchronous=FULL
 * makes COMMIT wait for the WAL's fsync, which is what makes a submission durable when
 * engine_submit returns. The engine groups many submissions into one transaction, so one fsync
 * serves them all.
 *
 * The lock file keeps two daemons off one state directory: two schedulers on one store would
 * start every task twice.
 */
#define _GNU_SOURCE
#include "store/store.h"

#include "core/internal.h"
#include "store/schema.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
    S_INS_JOB,
    S_INS_ARGS,
    S_UPD_JOB,
    S_DEL_JOB,
    S_DEL_ARGS,
    S_DEL_TASKS,
    S_ALL_JOBS,
    S_SPEC,
    S_HAS_ARGS,
    S_PUT_TASK,
    S_DEL_TASK,
    S_TOTALS,
    S_RUNNING,
    S_JOB_TASKS,
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_SAVEPOINT,
    S_RELEASE,
    S_ROLLBACK_TO,
    S_COUNT
};

#define TASK_COLUMNS                                                                   \
    "job_id, idx, state, shim_pid, shim_start, pgid, started_s, ended_s, task_state, " \
    "exit_status, signal, error, result_run, result_off, result_len, run_count"

static const char *const sql_text[S_COUNT] = {
    [S_INS_JOB] =
        "INSERT INTO jobs (uid, created_s, ended_s, status, kind, n_tasks, num_tasks, "
        "continue_on_failure, timeout_ms, console_output, auto_cleanup, "
        "cancel_requested, cleanup_requested, stop_task, has_args, spec, task_chunk_size) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
        "?17)",
    [S_INS_ARGS] = "INSERT INTO job_args (job_id, data) VALUES (?1, ?2)",
    [S_UPD_JOB] = "UPDATE jobs SET status = ?2, ended_s = ?3, cancel_requested = ?4, "
                  "cleanup_requested = ?5, stop_task = ?6 WHERE id = ?1",
    [S_DEL_JOB] = "DELETE FROM jobs WHERE id = ?1",
    [S_DEL_ARGS] = "DELETE FROM job_args WHERE job_id = ?1",
    [S_DEL_TASKS] = "DELETE FROM tasks WHERE job_id = ?1",
    [S_ALL_JOBS] = "SELECT id, uid, created_s, ended_s, status, kind, n_tasks, num_tasks, "
                   "continue_on_failure, timeout_ms, console_output, auto_cleanup, "
                   "cancel_requested, cleanup_requested, stop_task, has_args, task_chunk_size "
                   "FROM jobs "
                   "ORDER BY id",
    [S_SPEC] = "SELECT spec FROM jobs WHERE id = ?1",
    [S_HAS_ARGS] = "SELECT rowid FROM job_args WHERE job_id = ?1",
    [S_PUT_TASK] = "INSERT OR REPLACE INTO tasks (" TASK_COLUMNS ") "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
                   "?16)",
    [S_DEL_TASK] = "DELETE FROM tasks WHERE job_id = ?1 AND idx = ?2",
    /* A running row counts for the run_count tasks of its run (schema.c v3). */
    [S_TOTALS] = "SELECT job_id, SUM(CASE WHEN state = 0 THEN MAX(run_count, 1) ELSE 1 END), "
                 "SUM(CASE WHEN state = 0 THEN MAX(run_count, 1) ELSE 0 END), "
                 "SUM(state = 1 AND task_state = 0), SUM(state = 1 AND task_state <> 0), "
                 "MAX(idx + CASE WHEN state = 0 THEN MAX(run_count, 1) - 1 ELSE 0 END) "
                 "FROM tasks GROUP BY job_id",
    [S_RUNNING] = "SELECT " TASK_COLUMNS " FROM tasks WHERE state = 0 ORDER BY job_id, idx",
    [S_JOB_TASKS] = "SELECT " TASK_COLUMNS " FROM tasks WHERE job_id = ?1 ORDER BY idx",
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT one",
    [S_RELEASE] = "RELEASE one",
    [S_ROLLBACK_TO] = "ROLLBACK TO one",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[S_COUNT];
    int lock_fd;
    /* One thread at a time on the connection. Recursive: a transaction holds it from
     * store_begin to store_commit / store_rollback, and the calls inside take it again. */
    pthread_mutex_t mu;
    int mu_ready;
    char errmsg[256];
};

/* The store whose transaction this thread holds (store_begin), or NULL. */
static _Thread_local store *txn_store;

static void
enter(store *st)
{
    (void)pthread_mutex_lock(&st->mu);
}

static void
leave(store *st)
{
    (void)pthread_mutex_unlock(&st->mu);
}

static rx_err
db_fail(store *st, const char *what)
{
    (void)snprintf(st->errmsg, sizeof(st->errmsg), "store: %s failed: %s", what,
                   sqlite3_errmsg(st->db));
    return RX_ESTORE;
}

const char *
store_errmsg(store *st)
{
    return st->errmsg;
}

static sqlite3_stmt *
stmt(store *st, int which)
{
    sqlite3_stmt *s = st->stmt[which];

    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

/* Run a statement that returns no rows. */
static rx_err
step_done(store *st, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    rx_err err = rc == SQLITE_DONE ? RX_OK : db_fail(st, what);

    sqlite3_reset(s);
    return err;
}

static rx_err
exec_sql(store *st, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        (void)snprintf(st->errmsg, sizeof(st->errmsg), "store: '%s' failed: %s", sql,
                       msg ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
        return RX_ESTORE;
    }
    return RX_OK;
}

/* journal_mode answers with the mode now in force: anything but "wal" means it could not be set
 * (a file system without shared memory, say), and commits would not be what store.h says. */
static rx_err
set_wal(store *st)
{
    sqlite3_stmt *s = NULL;
    rx_err err = RX_OK;

    if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK)
        return db_fail(st, "set WAL mode");
    if (sqlite3_step(s) != SQLITE_ROW)
        err = db_fail(st, "set WAL mode");
    else if (strcmp((const char *)sqlite3_column_text(s, 0), "wal") != 0) {
        (void)snprintf(st->errmsg, sizeof(st->errmsg), "store: WAL mode refused (mode is '%s')",
                       (const char *)sqlite3_column_text(s, 0));
        err = RX_ESTORE;
    }
    sqlite3_finalize(s);
    return err;
}

static int
lock_state_dir(const char *state_dir, char *errbuf, size_t errlen, rx_err *out_err)
{
    char path[PATH_MAX];
    int fd;

    if (snprintf(path, sizeof(path), "%s/lock", state_dir) >= (int)sizeof(path)) {
        (void)snprintf(errbuf, errlen, "store: state directory path is too long");
        *out_err = RX_EINVAL;
        return -1;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        (void)snprintf(errbuf, errlen, "store: open '%s' failed: %s", path, strerror(errno));
        *out_err = RX_ESTORE;
        return -1;
    }
    /* A predecessor killed a moment ago may still have a child between its fork and its exec,
     * holding the lock's descriptor until the exec closes it: a restart right after a kill -9
     * waits STORE_LOCK_WAIT_MS for that, not for a live engine, which keeps it. */
    for (int i = 0; flock(fd, LOCK_EX | LOCK_NB) != 0; i++) {
        struct timespec ts = {0, 50 * 1000000L};

        if (errno == EWOULDBLOCK && i < STORE_LOCK_WAIT_MS / 50) {
            (void)nanosleep(&ts, NULL);
            continue;
        }
        (void)snprintf(errbuf, errlen,
                       "store: '%s' is locked: another rxjobd uses this state "
                       "directory",
                       path);
        close(fd);
        *out_err = RX_EINVAL;
        return -1;
    }
    return fd;
}

/* Open the database at path into st->db, in WAL mode with synchronous=FULL. */
static rx_err
open_db(store *st, const char *path, char *errbuf, size_t errlen)
{
    if (sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                            SQLITE_OPEN_EXRESCODE,
                        NULL) != SQLITE_OK) {
        (void)snprintf(errbuf, errlen, "store: open '%s' failed: %s", path,
                       st->db ? sqlite3_errmsg(st->db) : "out of memory");
        return RX_ESTORE;
    }
    (void)sqlite3_busy_timeout(st->db, 5000);
    if (set_wal(st) != RX_OK || exec_sql(st, "PRAGMA synchronous = FULL") != RX_OK) {
        (void)snprintf(errbuf, errlen, "%s", st->errmsg);
        return RX_ESTORE;
    }
    return RX_OK;
}

/* The size of db_path-wal in bytes, or 0. */
static uint64_t
wal_size(const char *db_path)
{
    char path[PATH_MAX];
    struct stat sb;

    if (snprintf(path, sizeof(path), "%s-wal", db_path) >= (int)sizeof(path) ||
        stat(path, &sb) != 0)
        return 0;
    return (uint64_t)sb.st_size;
}

/* STORE_WAL_PREFILL_BYTES of zeros into a new db_path-wal, synced; nothing when one exists. Under
 * the state directory's lock, before SQLite opens the database. When that fails (a full disk),
 * the file is removed again: holding nothing but zeros, it would only take the space SQLite
 * needs to open the database. */
static void
prefill_wal(const char *db_path)
{
    static const char zeros[64 * 1024];
    char path[PATH_MAX];
    int fd, failed = 0;

    if (snprintf(path, sizeof(path), "%s-wal", db_path) >= (int)sizeof(path))
        return;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno != EEXIST)
            rx__log(RX_LOG_WARN, "store: create '%s' failed: %s", path, strerror(errno));
        return;
    }
    for (size_t done = 0; done < STORE_WAL_PREFILL_BYTES;) {
        ssize_t n = write(fd, zeros, sizeof(zeros));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rx__log(RX_LOG_WARN, "store: writing '%s' ahead failed: %s", path,
                    n < 0 ? strerror(errno) : "short write");
            failed = 1;
            break;
        }
        done += (size_t)n;
    }
    if (!failed && fdatasync(fd) != 0) {
        rx__log(RX_LOG_WARN, "store: fdatasync '%s' failed: %s", path, strerror(errno));
        failed = 1;
    }
    close(fd);
    if (failed && unlink(path) != 0)
        rx__log(RX_LOG_WARN, "store: remove '%s' failed: %s", path, strerror(errno));
}

rx_err
store_open(const char *state_dir, store **out_store, char *errbuf, size_t errlen)
{
    store *st = NULL;
    char path[PATH_MAX];
    rx_err err = RX_ESTORE;

    st = rx__calloc(1, sizeof(*st));
    if (st == NULL)
        return RX_ENOMEM;
    st->lock_fd = -1;
    {
        pthread_mutexattr_t ma;

        if (pthread_mutexattr_init(&ma) != 0) {
            rx__free(st);
            return RX_ENOMEM;
        }
        (void)pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
        st->mu_ready = pthread_mutex_init(&st->mu, &ma) == 0;
        (void)pthread_mutexattr_destroy(&ma);
        if (!st->mu_ready) {
            rx__free(st);
            return RX_ENOMEM;
        }
    }
    st->lock_fd = lock_state_dir(state_dir, errbuf, errlen, &err);
    if (st->lock_fd < 0)
        goto fail;
    err = RX_ESTORE;
    if (snprintf(path, sizeof(path), "%s/jobs.db", state_dir) >= (int)sizeof(path)) {
        (void)snprintf(errbuf, errlen, "store: state directory path is too long");
        goto fail;
    }
    prefill_wal(path);
    err = open_db(st, path, errbuf, errlen);
    if (err == RX_OK)
        err = store_schema_migrate(st->db, errbuf, errlen);
    /* SQLite replaced the log (a new database turned to WAL mode), or one left by a crash is
     * shorter: closing checkpoints it into the database and removes it, so it is written ahead
     * for the rest of this daemon's life. */
    if (err == RX_OK && wal_size(path) < STORE_WAL_PREFILL_BYTES &&
        sqlite3_close(st->db) == SQLITE_OK) {
        st->db = NULL;
        prefill_wal(path);
        err = open_db(st, path, errbuf, errlen);
    }
    if (err != RX_OK)
        goto fail;
    for (int i = 0; i < S_COUNT; i++) {
        if (sqlite3_prepare_v3(st->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[i],
                               NULL) != SQLITE_OK) {
            (void)snprintf(errbuf, errlen, "store: prepare statement %d failed: %s", i,
                           sqlite3_errmsg(st->db));
            err = RX_ESTORE;
            goto fail;
        }
    }
    *out_store = st;
    return RX_OK;

fail:
    store_close(st);
    return err;
}

void
store_close(store *st)
{
    if (st == NULL)
        return;
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    if (st->db != NULL && sqlite3_close(st->db) != SQLITE_OK)
        rx__log(RX_LOG_WARN, "store: close failed: %s, ignoring", sqlite3_errmsg(st->db));
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    if (st->mu_ready)
        (void)pthread_mutex_destroy(&st->mu);
    rx__free(st);
}

/* Run one of the prepared transaction statements. */
static rx_err
step_txn(store *st, int which, const char *what)
{
    sqlite3_stmt *s = st->stmt[which];
    int rc = sqlite3_step(s);
    rx_err err = RX_OK;

    if (rc != SQLITE_DONE)
        err = db_fail(st, what);
    sqlite3_reset(s);
    return err;
}

rx_err
store_begin(store *st)
{
    rx_err err;

    enter(st);
    err = step_txn(st, S_BEGIN, "BEGIN IMMEDIATE");
    if (err != RX_OK) {
        leave(st);
        return err;
    }
    txn_store = st;
    return RX_OK;
}

rx_err
store_commit(store *st)
{
    rx_err err = step_txn(st, S_COMMIT, "COMMIT");

    /* On failure the transaction (and the connection) stay this thread's until
     * store_rollback. */
    if (err == RX_OK && txn_store == st) {
        txn_store = NULL;
        leave(st);
    }
    return err;
}

void
store_rollback(store *st)
{
    /* Only this thread's own transaction: another thread's must not be touched. */
    if (txn_store != st)
        return;
    /* Fails harmlessly when SQLite already rolled back on its own (SQLITE_FULL, ...); the
     * error of the failure that led here stays in errmsg. */
    if (!sqlite3_get_autocommit(st->db)) {
        (void)sqlite3_step(st->stmt[S_ROLLBACK]);
        sqlite3_reset(st->stmt[S_ROLLBACK]);
    }
    txn_store = NULL;
    leave(st);
}

rx_err
store_savepoint(store *st)
{
    return step_txn(st, S_SAVEPOINT, "SAVEPOINT");
}

void
store_savepoint_release(store *st)
{
    (void)step_txn(st, S_RELEASE, "RELEASE");
}

void
store_savepoint_rollback(store *st)
{
    (void)step_txn(st, S_ROLLBACK_TO, "ROLLBACK TO");
    (void)step_txn(st, S_RELEASE, "RELEASE");
}

static rx_err
job_insert_locked(store *st, const store_job_row *row, const void *spec, size_t spec_len,
                  const void *args, size_t args_len, int64_t *out_id)
{
    sqlite3_stmt *s = stmt(st, S_INS_JOB);
    int64_t id;
    rx_err err;

    sqlite3_bind_int64(s, 1, (sqlite3_int64)row->uid);
    sqlite3_bind_double(s, 2, row->created_s);
    sqlite3_bind_double(s, 3, row->ended_s);
    sqlite3_bind_int(s, 4, (int)row->status);
    sqlite3_bind_int(s, 5, (int)row->kind);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)row->n_tasks);
    sqlite3_bind_int64(s, 7, (sqlite3_int64)row->num_tasks);
    sqlite3_bind_int(s, 8, row->continue_on_failure);
    sqlite3_bind_int64(s, 9, row->timeout_ms);
    sqlite3_bind_int(s, 10, row->console_output);
    sqlite3_bind_int(s, 11, row->auto_cleanup);
    sqlite3_bind_int(s, 12, row->cancel_requested);
    sqlite3_bind_int(s, 13, row->cleanup_requested);
    sqlite3_bind_int64(s, 14, row->stop_task);
    sqlite3_bind_int(s, 15, row->has_args);
    sqlite3_bind_blob64(s, 16, spec, spec_len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 17, (sqlite3_int64)row->task_chunk_size);
    err = step_done(st, s, "insert job");
    sqlite3_clear_bindings(s);
    if (err != RX_OK)
        return err;
    id = sqlite3_last_insert_rowid(st->db);
    if (args != NULL) {
        s = stmt(st, S_INS_ARGS);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_blob64(s, 2, args, args_len, SQLITE_STATIC);
        err = step_done(st, s, "insert job arguments");
        sqlite3_clear_bindings(s);
        if (err != RX_OK)
            return err;
    }
    *out_id = id;
    return RX_OK;
}

static rx_err
job_update_locked(store *st, const store_job_row *row)
{
    sqlite3_stmt *s = stmt(st, S_UPD_JOB);

    sqlite3_bind_int64(s, 1, row->id);
    sqlite3_bind_int(s, 2, (int)row->status);
    sqlite3_bind_double(s, 3, row->ended_s);
    sqlite3_bind_int(s, 4, row->cancel_requested);
    sqlite3_bind_int(s, 5, row->cleanup_requested);
    sqlite3_bind_int64(s, 6, row->stop_task);
    return step_done(st, s, "update job");
}

static rx_err
job_delete_locked(store *st, int64_t id)
{
    static const int which[] = {S_DEL_TASKS, S_DEL_ARGS, S_DEL_JOB};

    for (size_t i = 0; i < RX__ARRAY_LEN(which); i++) {
        sqlite3_stmt *s = stmt(st, which[i]);
        rx_err err;

        sqlite3_bind_int64(s, 1, id);
        err = step_done(st, s, "delete job");
        if (err != RX_OK)
            return err;
    }
    return RX_OK;
}

static rx_err
jobs_each_locked(store *st, store_job_cb *cb, void *user)
{
    sqlite3_stmt *s = stmt(st, S_ALL_JOBS);
    rx_err err = RX_OK;
    int rc;

    for (;;) {
        store_job_row r;

        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
            break;

        memset(&r, 0, sizeof(r));
        r.id = sqlite3_column_int64(s, 0);
        r.uid = (uid_t)sqlite3_column_int64(s, 1);
        r.created_s = sqlite3_column_double(s, 2);
        r.ended_s = sqlite3_column_double(s, 3);
        r.status = (rx_job_status)sqlite3_column_int(s, 4);
        r.kind = (rx_work_kind)sqlite3_column_int(s, 5);
        r.n_tasks = (uint64_t)sqlite3_column_int64(s, 6);
        r.num_tasks = (unsigned)sqlite3_column_int64(s, 7);
        r.continue_on_failure = sqlite3_column_int(s, 8);
        r.timeout_ms = sqlite3_column_int64(s, 9);
        r.console_output = sqlite3_column_int(s, 10);
        r.auto_cleanup = sqlite3_column_int(s, 11);
        r.cancel_requested = sqlite3_column_int(s, 12);
        r.cleanup_requested = sqlite3_column_int(s, 13);
        r.stop_task = sqlite3_column_int64(s, 14);
        r.has_args = sqlite3_column_int(s, 15);
        r.task_chunk_size = (unsigned)sqlite3_column_int64(s, 16);
        err = cb(&r, user);
        if (err != RX_OK)
            break;
    }
    if (err == RX_OK && rc != SQLITE_DONE)
        err = db_fail(st, "read jobs");
    sqlite3_reset(s);
    return err;
}

static rx_err
job_spec_locked(store *st, int64_t id, void **out_blob, size_t *out_len)
{
    sqlite3_stmt *s = stmt(st, S_SPEC);
    rx_err err = RX_OK;
    int rc;

    sqlite3_bind_int64(s, 1, id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const void *p = sqlite3_column_blob(s, 0);
        size_t len = (size_t)sqlite3_column_bytes(s, 0);

        *out_blob = rx__memdup(p ? p : "", len);
        *out_len = len;
        if (*out_blob == NULL)
            err = RX_ENOMEM;
    } else {
        err = rc == SQLITE_DONE ? RX_ENOENT : db_fail(st, "read job spec");
    }
    sqlite3_reset(s);
    return err;
}

static int
write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static rx_err
job_args_write_locked(store *st, int64_t id, int fd)
{
    sqlite3_stmt *s = stmt(st, S_HAS_ARGS);
    sqlite3_blob *blob = NULL;
    sqlite3_int64 rowid;
    char buf[64 * 1024];
    int size, off = 0, rc;
    rx_err err = RX_OK;

    sqlite3_bind_int64(s, 1, id);
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        err = rc == SQLITE_DONE ? RX_ENOENT : db_fail(st, "find job arguments");
        sqlite3_reset(s);
        return err;
    }
    rowid = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    /* Incremental blob I/O reads the arguments piece by piece: a job may carry tens of MiB. */
    if (sqlite3_blob_open(st->db, "main", "job_args", "data", rowid, 0, &blob) != SQLITE_OK)
        return db_fail(st, "open job arguments");
    size = sqlite3_blob_bytes(blob);
    while (off < size) {
        int n = size - off < (int)sizeof(buf) ? size - off : (int)sizeof(buf);

        if (sqlite3_blob_read(blob, buf, n, off) != SQLITE_OK) {
            err = db_fail(st, "read job arguments");
            break;
        }
        if (write_all(fd, buf, (size_t)n) != 0) {
            (void)snprintf(st->errmsg, sizeof(st->errmsg), "store: write arguments failed: %s",
                           strerror(errno));
            err = RX_EIO;
            break;
        }
        off += n;
    }
    sqlite3_blob_close(blob);
    return err;
}

static rx_err
task_put_locked(store *st, const store_task_row *r)
{
    sqlite3_stmt *s = stmt(st, S_PUT_TASK);

    sqlite3_bind_int64(s, 1, r->job_id);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)r->idx);
    sqlite3_bind_int(s, 3, r->running ? 0 : 1);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)r->shim_pid);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)r->shim_start);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)r->pgid);
    sqlite3_bind_double(s, 7, r->started_s);
    sqlite3_bind_double(s, 8, r->ended_s);
    sqlite3_bind_int(s, 9, (int)r->task_state);
    sqlite3_bind_int(s, 10, r->exit_status);
    sqlite3_bind_int(s, 11, r->signal);
    if (r->error != NULL)
        sqlite3_bind_text(s, 12, r->error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 13, (sqlite3_int64)r->result_run);
    sqlite3_bind_int64(s, 14, (sqlite3_int64)r->result_off);
    sqlite3_bind_int64(s, 15, (sqlite3_int64)r->result_len);
    sqlite3_bind_int64(s, 16, (sqlite3_int64)(r->running && r->run_count > 1 ? r->run_count : 1));
    return step_done(st, s, "write task");
}

static rx_err
task_delete_locked(store *st, int64_t job_id, uint64_t idx)
{
    sqlite3_stmt *s = stmt(st, S_DEL_TASK);

    sqlite3_bind_int64(s, 1, job_id);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)idx);
    return step_done(st, s, "delete task");
}

static rx_err
task_totals_each_locked(store *st, store_totals_cb *cb, void *user)
{
    sqlite3_stmt *s = stmt(st, S_TOTALS);
    rx_err err = RX_OK;
    int rc;

    for (;;) {
        store_task_totals t;

        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
            break;

        t.job_id = sqlite3_column_int64(s, 0);
        t.rows = (uint64_t)sqlite3_column_int64(s, 1);
        t.running = (uint64_t)sqlite3_column_int64(s, 2);
        t.ok = (uint64_t)sqlite3_column_int64(s, 3);
        t.failed = (uint64_t)sqlite3_column_int64(s, 4);
        t.max_idx = sqlite3_column_int64(s, 5);
        err = cb(&t, user);
        if (err != RX_OK)
            break;
    }
    if (err == RX_OK && rc != SQLITE_DONE)
        err = db_fail(st, "read task totals");
    sqlite3_reset(s);
    return err;
}

static rx_err
tasks_each(store *st, sqlite3_stmt *s, store_task_cb *cb, void *user)
{
    rx_err err = RX_OK;
    int rc;

    for (;;) {
        store_task_row r;

        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
            break;

        r.job_id = sqlite3_column_int64(s, 0);
        r.idx = (uint64_t)sqlite3_column_int64(s, 1);
        r.running = sqlite3_column_int(s, 2) == 0;
        r.shim_pid = (pid_t)sqlite3_column_int64(s, 3);
        r.shim_start = (uint64_t)sqlite3_column_int64(s, 4);
        r.pgid = (pid_t)sqlite3_column_int64(s, 5);
        r.started_s = sqlite3_column_double(s, 6);
        r.ended_s = sqlite3_column_double(s, 7);
        r.task_state = (rx_task_state)sqlite3_column_int(s, 8);
        r.exit_status = sqlite3_column_int(s, 9);
        r.signal = sqlite3_column_int(s, 10);
        r.error = (const char *)sqlite3_column_text(s, 11);
        r.result_run = (uint64_t)sqlite3_column_int64(s, 12);
        r.result_off = (uint64_t)sqlite3_column_int64(s, 13);
        r.result_len = (uint64_t)sqlite3_column_int64(s, 14);
        r.run_count = (uint64_t)sqlite3_column_int64(s, 15);
        if (r.run_count == 0)
            r.run_count = 1;
        err = cb(&r, user);
        if (err != RX_OK)
            break;
    }
    if (err == RX_OK && rc != SQLITE_DONE)
        err = db_fail(st, "read tasks");
    sqlite3_reset(s);
    return err;
}

static rx_err
tasks_running_each_locked(store *st, store_task_cb *cb, void *user)
{
    return tasks_each(st, stmt(st, S_RUNNING), cb, user);
}

static rx_err
tasks_of_job_each_locked(store *st, int64_t job_id, store_task_cb *cb, void *user)
{
    sqlite3_stmt *s = stmt(st, S_JOB_TASKS);

    sqlite3_bind_int64(s, 1, job_id);
    return tasks_each(st, s, cb, user);
}

/* The API: each call holds the connection (store.h: the submission leader uses it without the
 * engine's mutex). */

rx_err
store_job_insert(store *st, const store_job_row *row, const void *spec, size_t spec_len,
                 const void *args, size_t args_len, int64_t *out_id)
{
    rx_err err;

    enter(st);
    err = job_insert_locked(st, row, spec, spec_len, args, args_len, out_id);
    leave(st);
    return err;
}

rx_err
store_job_update(store *st, const store_job_row *row)
{
    rx_err err;

    enter(st);
    err = job_update_locked(st, row);
    leave(st);
    return err;
}

rx_err
store_job_delete(store *st, int64_t id)
{
    rx_err err;

    enter(st);
    err = job_delete_locked(st, id);
    leave(st);
    return err;
}

rx_err
store_jobs_each(store *st, store_job_cb *cb, void *user)
{
    rx_err err;

    enter(st);
    err = jobs_each_locked(st, cb, user);
    leave(st);
    return err;
}

rx_err
store_job_spec(store *st, int64_t id, void **out_blob, size_t *out_len)
{
    rx_err err;

    enter(st);
    err = job_spec_locked(st, id, out_blob, out_len);
    leave(st);
    return err;
}

rx_err
store_job_args_write(store *st, int64_t id, int fd)
{
    rx_err err;

    enter(st);
    err = job_args_write_locked(st, id, fd);
    leave(st);
    return err;
}

rx_err
store_task_put(store *st, const store_task_row *r)
{
    rx_err err;

    enter(st);
    err = task_put_locked(st, r);
    leave(st);
    return err;
}

rx_err
store_task_delete(store *st, int64_t job_id, uint64_t idx)
{
    rx_err err;

    enter(st);
    err = task_delete_locked(st, job_id, idx);
    leave(st);
    return err;
}

rx_err
store_task_totals_each(store *st, store_totals_cb *cb, void *user)
{
    rx_err err;

    enter(st);
    err = task_totals_each_locked(st, cb, user);
    leave(st);
    return err;
}

rx_err
store_tasks_running_each(store *st, store_task_cb *cb, void *user)
{
    rx_err err;

    enter(st);
    err = tasks_running_each_locked(st, cb, user);
    leave(st);
    return err;
}

rx_err
store_tasks_of_job_each(store *st, int64_t job_id, store_task_cb *cb, void *user)
{
    rx_err err;

    enter(st);
    err = tasks_of_job_each_locked(st, job_id, cb, user);
    leave(st);
    return err;
}
