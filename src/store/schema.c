/*
 * schema.c - the job store's tables, their version, and how a store moves from one version to
 * the next.
 *
 * The version lives in the database header (PRAGMA user_version), so it is read and written in
 * the same transaction as the tables. Version 0 is an empty database.
 *
 * Upgrade procedure (the written note STYLE.md section 11 asks for):
 *  1. Never edit a migration that has shipped: add a new one to `migrations` below, taking the
 *     store from version N to N + 1, and bump STORE_SCHEMA_VERSION to N + 1.
 *  2. A migration is plain SQL that runs in one transaction with the version bump: either the
 *     store is fully at N + 1 or still at N. rxjobd applies every pending migration at start,
 *     in order, before it reconciles tasks.
 *  3. Add columns with defaults that keep old rows' meaning; the engine must read a row written
 *     by any earlier version the same way that version did.
 *  4. A store newer than the binary is refused (no downgrade): run the newer rxjobd, or restore
 *     the backup. Take a backup before upgrading (`sqlite3 jobs.db ".backup jobs.db.bak"` while
 *     rxjobd is stopped).
 *
 * Version 1 tables:
 *  jobs      one row per job, kept until its results are collected with cleanup or it is cleaned
 *            up. id is AUTOINCREMENT so an id is never reused, even after its row is deleted.
 *            status is the rx_job_status number; spec is the work (store/work.h encoding).
 *            stop_task is the task whose failure stopped the job (continue_on_failure off), or
 *            -1; cleanup_requested marks a forced cleanup waiting for its tasks to be gone.
 *  job_args  the per-task arguments of jobs that have them (store/work.h "args" encoding).
 *  tasks     one row per task that was started: state 0 = running (under the supervisor whose
 *            pid and start time, /proc/PID/stat field 22, are recorded), 1 = ended (task_state
 *            is an rx_task_state). Tasks never started have no row.
 *
 * Version 2 (1 -> 2): jobs.task_chunk_size, the tasks of function work one program process runs
 * in a row (0 = chosen by the daemon). Rows of version 1 get 1: one process per task, as that
 * version ran them. The tasks of one chunk are rows of their own that name the same supervisor.
 * tasks.result_run, result_off, result_len: where an OK task's result is. result_run 0 (every
 * row of version 1): in t<idx>.result; k > 0: bytes result_off .. result_off + result_len - 1
 * of t<k-1>.results, the file the chunk starting at task k - 1 wrote its results to.
 *
 * Version 3 (2 -> 3): tasks.run_count. A running row (state 0) stands for the run of run_count
 * tasks idx .. idx + run_count - 1 that one supervisor runs in a row (a chunk), so starting a
 * chunk writes one row, not one per task; each task's end replaces or adds its own row (run_count
 * 1). Rows of version 2 get 1: a chunk of theirs is still the running rows of its tasks, one each,
 * naming the same supervisor, and recovery reads both forms.
 */
#include "store/schema.h"

#include <stdio.h>

static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE jobs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  uid INTEGER NOT NULL,"
    "  created_s REAL NOT NULL,"
    "  ended_s REAL NOT NULL DEFAULT 0,"
    "  status INTEGER NOT NULL,"
    "  kind INTEGER NOT NULL,"
    "  n_tasks INTEGER NOT NULL,"
    "  num_tasks INTEGER NOT NULL,"
    "  continue_on_failure INTEGER NOT NULL,"
    "  timeout_ms INTEGER NOT NULL,"
    "  console_output INTEGER NOT NULL,"
    "  auto_cleanup INTEGER NOT NULL,"
    "  cancel_requested INTEGER NOT NULL DEFAULT 0,"
    "  cleanup_requested INTEGER NOT NULL DEFAULT 0,"
    "  stop_task INTEGER NOT NULL DEFAULT -1,"
    "  has_args INTEGER NOT NULL,"
    "  spec BLOB NOT NULL);"
    "CREATE TABLE job_args ("
    "  job_id INTEGER PRIMARY KEY,"
    "  data BLOB NOT NULL);"
    "CREATE TABLE tasks ("
    "  job_id INTEGER NOT NULL,"
    "  idx INTEGER NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  shim_pid INTEGER NOT NULL DEFAULT 0,"
    "  shim_start INTEGER NOT NULL DEFAULT 0,"
    "  pgid INTEGER NOT NULL DEFAULT 0,"
    "  started_s REAL NOT NULL DEFAULT 0,"
    "  ended_s REAL NOT NULL DEFAULT 0,"
    "  task_state INTEGER NOT NULL DEFAULT 0,"
    "  exit_status INTEGER NOT NULL DEFAULT -1,"
    "  signal INTEGER NOT NULL DEFAULT 0,"
    "  error TEXT,"
    "  PRIMARY KEY (job_id, idx)) WITHOUT ROWID;"
    "CREATE INDEX tasks_running ON tasks (state) WHERE state = 0;",
    /* 1 -> 2 */
    "ALTER TABLE jobs ADD COLUMN task_chunk_size INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE tasks ADD COLUMN result_run INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN result_off INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN result_len INTEGER NOT NULL DEFAULT 0;",
    /* 2 -> 3 */
    "ALTER TABLE tasks ADD COLUMN run_count INTEGER NOT NULL DEFAULT 1;",
};

#define N_MIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

_Static_assert(N_MIGRATIONS == STORE_SCHEMA_VERSION, "one migration per schema version");

static int
user_version(sqlite3 *db, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);

    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int(st, 0);
    else
        rc = SQLITE_ERROR;
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : -1;
}

rx_err
store_schema_migrate(sqlite3 *db, char *errbuf, size_t errlen)
{
    int version = 0;
    char *msg = NULL;
    char sql[64];

    /* IMMEDIATE: two daemons racing on one fresh store must not both create the tables. */
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK)
        goto fail;
    if (user_version(db, &version) != 0) {
        (void)snprintf(errbuf, errlen, "store: read schema version failed: %s", sqlite3_errmsg(db));
        goto rollback;
    }
    if (version > STORE_SCHEMA_VERSION) {
        (void)snprintf(errbuf, errlen,
                       "store: schema version %d is newer than this rxjobd's (%d): run a newer "
                       "rxjobd",
                       version, STORE_SCHEMA_VERSION);
        goto rollback;
    }
    for (int v = version; v < STORE_SCHEMA_VERSION; v++) {
        if (sqlite3_exec(db, migrations[v], NULL, NULL, &msg) != SQLITE_OK)
            goto fail;
        (void)snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
        if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
            goto fail;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)
        goto fail;
    return RX_OK;

fail:
    (void)snprintf(errbuf, errlen, "store: schema migration failed: %s",
                   msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
rollback:
    (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return RX_ESTORE;
}
