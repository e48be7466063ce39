/*
 * engine.c - rxjobd's job engine: the API of engine.h, the group commit of submissions, and
 * recovery at start. The scheduler thread and the rules that move jobs are in sched.c; the
 * task supervisors in exec_local.c; the store and spool in src/store/.
 *
 * Group commit: engine_submit validates and encodes the job in the caller's thread, then queues
 * it. The first submitter to find no commit in progress leads: in its own thread it takes every
 * queued submission, inserts them all in one transaction (a savepoint each when there are
 * several, so one bad row fails only its own submission), commits (one fsync), adds them to
 * memory and wakes each follower on the follower's own condition variable, then hands the lead
 * to the first submission queued meanwhile. The leader holds the store, not the engine's mutex,
 * while it writes and syncs. Under load, the submissions that arrive during one fsync share the
 * next one.
 *
 * Recovery (engine_open): every task the store records as running is reconciled with reality,
 * in this order for each: its supervisor still alive (pid and /proc start time match) ->
 * adopted and watched through a pidfd like any other; else its exit record present -> the task
 * ends as the record says (a go-0 record: it never started, and is put back); else -> LOST, and
 * a task process it may have left behind is killed. Queued tasks then run as usual, and a cancel
 * requested before the crash is carried out (the adopted supervisors are signaled again).
 */
#define _GNU_SOURCE
#include "server/engine.h"

#include "core/internal.h"
#include "core/spec.h"
#include "server/exec_local.h"
#include "server/exec_slurm.h"
#include "server/limits.h"
#include "server/sched.h"
#include "store/work.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Client-controlled quantities; the settable ones are e->limits (limits.h). */
#define MAX_FUNCTION_NAME      128
#define DEFAULT_GRACE_MS       1000
/* How long engine_close lets the remover thread go on with its queue, milliseconds. */
#define ENGINE_REMOVE_DRAIN_MS 10000
/* A job's spool directory once handed to the remover thread: spool/<id>.gone. */
#define GONE_SUFFIX            ".gone"
/* New jobs of one batch that may start in its transaction, at most (the rest: the scheduler). */
#define ENGINE_BATCH_START_MAX 64
#define RESULT_NOT_RUN_TEXT                                   \
    "not run: the job stopped after task %" PRId64 " failed " \
    "(continue_on_failure is false)"

#define ERRMSG_LEN 512

/* Why the last engine call of this thread failed (engine_errmsg). */
static _Thread_local char last_errmsg[ERRMSG_LEN];

const char *
engine_errmsg(void)
{
    return last_errmsg;
}

static void set_errmsg(const char *fmt, ...) RX_PRINTF(1, 2);

static void
set_errmsg(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(last_errmsg, sizeof(last_errmsg), fmt, ap) < 0)
        last_errmsg[0] = '\0';
    va_end(ap);
}

/* Note err's cause for engine_errmsg: the store's message for RX_ESTORE (caller holds mu). */
static rx_err
store_failed(engine *e, rx_err err)
{
    if (err == RX_ESTORE)
        set_errmsg("%s", store_errmsg(e->st));
    else if (err == RX_ENOMEM)
        set_errmsg("out of memory");
    return err;
}

static rx_err why_fail(char *why, size_t why_len, rx_err err, const char *fmt, ...) RX_PRINTF(4, 5);

static rx_err
why_fail(char *why, size_t why_len, rx_err err, const char *fmt, ...)
{
    va_list ap;

    if (why != NULL && why_len > 0) {
        va_start(ap, fmt);
        (void)vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* ---------------------------------------------------------------------------------------------
 * Jobs in memory
 * ------------------------------------------------------------------------------------------- */

static ejob *
job_from_row(const store_job_row *row)
{
    ejob *j = rx__calloc(1, sizeof(*j));

    if (j == NULL)
        return NULL;
    j->id = row->id;
    j->uid = row->uid;
    j->kind = row->kind;
    j->n_tasks = row->n_tasks;
    j->num_tasks = row->num_tasks;
    j->task_chunk_size = row->task_chunk_size;
    j->continue_on_failure = row->continue_on_failure;
    j->console_output = row->console_output;
    j->auto_cleanup = row->auto_cleanup;
    j->has_args = row->has_args;
    j->timeout_ms = row->timeout_ms;
    j->created_s = row->created_s;
    j->ended_s = row->ended_s;
    j->status = row->status;
    j->cancel_requested = row->cancel_requested;
    j->cleanup_requested = row->cleanup_requested;
    j->stop_task = row->stop_task;
    return j;
}

static void
job_free(ejob *j)
{
    if (j == NULL)
        return;
    rx__free(j->requeue);
    rx__free(j->saved.requeue);
    rx__free(j->work);
    rx__free(j);
}

static size_t
job_pos(const engine *e, int64_t id)
{
    size_t lo = 0, hi = e->n_jobs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (e->jobs[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

ejob *
engine_find(engine *e, int64_t id)
{
    size_t pos = job_pos(e, id);

    return pos < e->n_jobs && e->jobs[pos]->id == id ? e->jobs[pos] : NULL;
}

/* A job the caller may see: its own (root sees all), and not being removed. */
static ejob *
find_visible(engine *e, uid_t uid, int64_t id)
{
    ejob *j = engine_find(e, id);

    if (j == NULL || j->cleanup_requested || j->claimed || (uid != 0 && j->uid != uid))
        return NULL;
    return j;
}

static rx_err
jobs_reserve(engine *e, size_t more)
{
    size_t cap;
    ejob **p;

    if (e->cap_jobs - e->n_jobs >= more)
        return RX_OK;
    cap = e->cap_jobs ? e->cap_jobs : 64;
    while (cap - e->n_jobs < more)
        cap *= 2;
    p = rx__realloc(e->jobs, cap * sizeof(*p));
    if (p == NULL)
        return RX_ENOMEM;
    e->jobs = p;
    e->cap_jobs = cap;
    return RX_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Jobs not yet ended, per uid (queued_jobs_per_user). Caller holds mu.
 * ------------------------------------------------------------------------------------------- */

struct engine_uid_count {
    uid_t uid;
    uint64_t n;
};

static uint64_t *
uid_count(engine *e, uid_t uid, int create)
{
    struct engine_uid_count *p;

    for (size_t i = 0; i < e->n_uid_counts; i++)
        if (e->uid_counts[i].uid == uid)
            return &e->uid_counts[i].n;
    if (!create)
        return NULL;
    p = rx__realloc(e->uid_counts, (e->n_uid_counts + 1) * sizeof(*p));
    if (p == NULL)
        return NULL;
    e->uid_counts = p;
    p[e->n_uid_counts].uid = uid;
    p[e->n_uid_counts].n = 0;
    return &p[e->n_uid_counts++].n;
}

static void
uid_count_add(engine *e, uid_t uid, int delta)
{
    uint64_t *n = uid_count(e, uid, delta > 0);

    if (n == NULL)
        return; /* out of memory: the limit is checked against a lower count, nothing breaks */
    if (delta > 0)
        (*n)++;
    else if (*n > 0)
        (*n)--;
}

/* Append a job with an id above every other (new ids only grow). Capacity reserved. */
static void
jobs_append(engine *e, ejob *j)
{
    e->jobs[e->n_jobs++] = j;
    if (!rx_job_status_is_terminal(j->status)) {
        uid_count_add(e, j->uid, 1);
        j->active = 1;
        j->a_prev = e->a_tail;
        j->a_next = NULL;
        if (e->a_tail != NULL)
            e->a_tail->a_next = j;
        else
            e->a_head = j;
        e->a_tail = j;
    }
}

void
engine_active_remove(engine *e, ejob *j)
{
    if (!j->active)
        return;
    uid_count_add(e, j->uid, -1);
    if (j->a_prev != NULL)
        j->a_prev->a_next = j->a_next;
    else
        e->a_head = j->a_next;
    if (j->a_next != NULL)
        j->a_next->a_prev = j->a_prev;
    else
        e->a_tail = j->a_prev;
    j->a_prev = j->a_next = NULL;
    j->active = 0;
    /* Over: no task of it starts again, so its work is not needed in memory any more. */
    rx__free(j->work);
    j->work = NULL;
    j->work_len = 0;
    if (e->slurm == NULL)
        j->prepared = 0; /* its spool would have no work file for a start: prepare again */
}

/* One directory for the remover thread: spool/<id>.gone, or spool/<id> itself when it could not
 * be renamed (ids are never reused, so the name stays the removed job's). */
struct engine_gone {
    int64_t id;
    int renamed;
};

static int
gone_path(const engine *e, const struct engine_gone *g, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/spool/%" PRId64 "%s", e->state_dir, g->id,
                     g->renamed ? GONE_SUFFIX : "");

    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static void
gone_push(engine *e, int64_t id, int renamed)
{
    pthread_mutex_lock(&e->rm_mu);
    if (e->gone_head > 0 && e->gone_head == e->n_gone)
        e->gone_head = e->n_gone = 0;
    if (e->n_gone == e->cap_gone) {
        size_t cap = e->cap_gone ? e->cap_gone * 2 : 16;
        struct engine_gone *p = rx__realloc(e->gone, cap * sizeof(*p));

        if (p == NULL) {
            pthread_mutex_unlock(&e->rm_mu);
            /* Left behind, not lost: the next engine_open removes spools without a job. */
            rx__log(RX_LOG_WARN,
                    "engine: out of memory queueing the spool of job %" PRId64
                    " for removal, ignoring",
                    id);
            return;
        }
        e->gone = p;
        e->cap_gone = cap;
    }
    e->gone[e->n_gone].id = id;
    e->gone[e->n_gone++].renamed = renamed;
    pthread_cond_signal(&e->rm_cond);
    pthread_mutex_unlock(&e->rm_mu);
}

/* Rename spool/<id> to <id>.gone and queue it for the remover. When the rename fails (the
 * .gone name is taken: a removal a crash cut short), the directory is removed in place: later
 * by the remover, or, with now, here and at once (orphan directories found at start, whose id
 * may be given to the next job: a submission that starts at once makes its directory before its
 * commit, so an id a crash left uncommitted comes again, and a removal in place later could take
 * that job's files). */
static void
gone_rename(engine *e, int64_t id, int now)
{
    char dir[PATH_MAX], to[PATH_MAX];
    struct engine_gone g = {.id = id, .renamed = 1};

    if (spool_job_dir(e->state_dir, id, dir, sizeof(dir)) != 0 ||
        gone_path(e, &g, to, sizeof(to)) != 0)
        return;
    /* One rename, whatever the directory holds: the job's name is free at once, and the
     * removal (seconds for a big job, up to SPOOL_REMOVE_AS_MS as its user) blocks nobody. */
    if (rename(dir, to) == 0) {
        gone_push(e, id, 1);
        return;
    }
    if (errno == ENOENT)
        return; /* nothing was written for this job (or it is already renamed) */
    rx__log(RX_LOG_WARN, "engine: rename '%s' to '%s' failed: %s; removing it in place%s", dir, to,
            strerror(errno), now ? " now" : "");
    if (!now)
        gone_push(e, id, 0);
    else if (spool_remove_dir(dir) != RX_OK)
        rx__log(RX_LOG_WARN, "engine: remove '%s' failed: %s", dir, strerror(errno));
}

void
engine_queue_gone(engine *e, int64_t id)
{
    gone_rename(e, id, 0);
}

static int
past(const struct timespec *t)
{
    struct timespec now;

    (void)clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* The remover thread: the only one that removes spool directories. It never takes mu. */
static void *
remover_main(void *arg)
{
    engine *e = arg;

    pthread_mutex_lock(&e->rm_mu);
    for (;;) {
        struct engine_gone g;
        char dir[PATH_MAX];

        while (e->gone_head == e->n_gone && !e->rm_stop)
            pthread_cond_wait(&e->rm_cond, &e->rm_mu);
        if (e->gone_head == e->n_gone || (e->rm_stop && past(&e->rm_stop_by)))
            break; /* engine_close logs what is left */
        g = e->gone[e->gone_head++];
        pthread_mutex_unlock(&e->rm_mu);
        if (gone_path(e, &g, dir, sizeof(dir)) == 0 && spool_remove_dir(dir) != RX_OK)
            rx__log(RX_LOG_WARN, "engine: remove '%s' failed: %s, ignoring", dir, strerror(errno));
        pthread_mutex_lock(&e->rm_mu);
    }
    pthread_mutex_unlock(&e->rm_mu);
    return NULL;
}

/* Stop the remover thread: it goes on with its queue for ENGINE_REMOVE_DRAIN_MS at most (plus
 * the removal in hand, itself bounded as its user); what is left is logged, and the next
 * engine_open removes it (directories without a job, and every *.gone one). */
static void
remover_stop(engine *e)
{
    if (!e->rm_started)
        return;
    pthread_mutex_lock(&e->rm_mu);
    (void)clock_gettime(CLOCK_MONOTONIC, &e->rm_stop_by);
    e->rm_stop_by.tv_sec += ENGINE_REMOVE_DRAIN_MS / 1000;
    e->rm_stop_by.tv_nsec += (long)(ENGINE_REMOVE_DRAIN_MS % 1000) * 1000000L;
    if (e->rm_stop_by.tv_nsec >= 1000000000L) {
        e->rm_stop_by.tv_sec++;
        e->rm_stop_by.tv_nsec -= 1000000000L;
    }
    e->rm_stop = 1;
    pthread_cond_signal(&e->rm_cond);
    pthread_mutex_unlock(&e->rm_mu);
    pthread_join(e->rm_thread, NULL);
    e->rm_started = 0;
    if (e->gone_head < e->n_gone)
        rx__log(RX_LOG_WARN,
                "engine: %zu spool directories not removed in %d ms (the first: job %" PRId64
                "); the next start removes them",
                e->n_gone - e->gone_head, ENGINE_REMOVE_DRAIN_MS, e->gone[e->gone_head].id);
}

void
engine_detach(engine *e, ejob *j)
{
    size_t pos = job_pos(e, j->id);

    if (pos < e->n_jobs && e->jobs[pos] == j) {
        memmove(e->jobs + pos, e->jobs + pos + 1, (e->n_jobs - pos - 1) * sizeof(*e->jobs));
        e->n_jobs--;
    }
    engine_active_remove(e, j);
    j->detached = 1;
    if (j->pins == 0) {
        engine_queue_gone(e, j->id);
        job_free(j);
    }
}

/* A reader is done with j's spool; the last one after a detach removes it. Caller holds mu. */
static void
job_unpin(engine *e, ejob *j)
{
    if (--j->pins == 0 && j->detached) {
        engine_queue_gone(e, j->id);
        job_free(j);
    }
}

static void
job_fill(const ejob *j, engine_job *out)
{
    rx__task_counts c;

    engine_job_counts(j, &c);
    memset(out, 0, sizeof(*out));
    out->id = j->id;
    out->uid = j->uid;
    out->status = j->status;
    out->kind = j->kind;
    out->n_tasks = (size_t)j->n_tasks;
    out->pending = c.pending;
    out->running = c.running;
    out->ok = c.ok;
    out->failed = c.failed;
    out->created_s = j->created_s;
    out->ended_s = j->ended_s;
    out->console_output = j->console_output;
    out->auto_cleanup = j->auto_cleanup;
    out->cancel_requested = j->cancel_requested;
}

/* Delete a job now (rows, memory, spool). Caller holds mu. RX_OK; RX_ESTORE. */
static rx_err
job_delete(engine *e, ejob *j)
{
    rx_err err = store_begin(e->st);

    if (err == RX_OK)
        err = store_job_delete(e->st, j->id);
    if (err == RX_OK)
        err = store_commit(e->st);
    if (err != RX_OK) {
        rx__log(RX_LOG_ERROR, "engine: delete job %" PRId64 " failed: %s", j->id,
                store_errmsg(e->st));
        (void)store_failed(e, RX_ESTORE);
        store_rollback(e->st);
        return RX_ESTORE;
    }
    engine_detach(e, j);
    pthread_cond_broadcast(&e->changed);
    return RX_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Submission: validation and the group commit
 * ------------------------------------------------------------------------------------------- */

static int
function_name_ok(const char *name)
{
    size_t n = 0;

    for (const char *p = name; *p != '\0'; p++, n++) {
        char c = *p;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return n >= 1 && n <= MAX_FUNCTION_NAME;
}

/* A vector within the limits n_name and bytes_name (bytes counted as api_jobs.c does: the
 * strings' lengths, without their NULs). */
static rx_err
check_strv(char *const *v, const rx_limits *lim, const char *n_name, const char *bytes_name,
           char *why, size_t why_len, size_t *out_n)
{
    size_t n = 0;
    uint64_t bytes = 0, max_n = 0, max_bytes = 0;

    (void)rx_limits_get(lim, n_name, &max_n);
    (void)rx_limits_get(lim, bytes_name, &max_bytes);
    for (; v != NULL && v[n] != NULL; n++)
        bytes += strlen(v[n]);
    if (n > max_n)
        return rx_limits_why(RX_ETOOBIG, why, why_len, n_name, n, max_n);
    if (bytes > max_bytes)
        return rx_limits_why(RX_ETOOBIG, why, why_len, bytes_name, bytes, max_bytes);
    *out_n = n;
    return RX_OK;
}

/* Validate a submission and work out its task count (DESIGN.md section 2, protocol limits). */
static rx_err
check_spec(const engine_spec *s, const rx_limits *lim, uint64_t *out_n_tasks, char *why,
           size_t why_len)
{
    size_t argc = 0, n_env = 0, count = 0;
    rx_err err;

    if (s == NULL)
        return why_fail(why, why_len, RX_EINVAL, "no job");
    if (s->kind != RX_WORK_COMMAND && s->kind != RX_WORK_FUNCTION)
        return why_fail(why, why_len, RX_EINVAL, "work.kind must be command or function");
    if (s->argv == NULL || s->argv[0] == NULL || s->argv[0][0] == '\0')
        return why_fail(why, why_len, RX_EINVAL,
                        s->kind == RX_WORK_COMMAND ? "the command's argv is empty"
                                                   : "function work needs the program (exe)");
    err = check_strv(s->argv, lim, "argv_count", "argv_bytes", why, why_len, &argc);
    if (err != RX_OK)
        return err;
    if (s->kind == RX_WORK_FUNCTION &&
        (s->function_name == NULL || !function_name_ok(s->function_name)))
        return why_fail(why, why_len, RX_EINVAL,
                        "function name must be 1 to %d characters of [A-Za-z0-9_.-]",
                        MAX_FUNCTION_NAME);
    err = check_strv(s->env, lim, "env_count", "env_bytes", why, why_len, &n_env);
    if (err != RX_OK)
        return err;
    for (size_t i = 0; i < n_env; i++) {
        const char *eq = strchr(s->env[i], '=');

        if (eq == NULL || eq == s->env[i])
            return why_fail(why, why_len, RX_EINVAL, "env entry %zu is not NAME=value", i);
    }
    if (s->cwd != NULL) {
        struct stat st;

        /* Relative to what? The daemon's directory means nothing to the client. */
        if (s->cwd[0] != '/')
            return why_fail(why, why_len, RX_EINVAL, "cwd '%s' is not an absolute path", s->cwd);
        /* Another user's job (system mode): asked with that user's rights, not root's, or a
         * submission would tell whether a directory exists where the user cannot look. A user
         * that cannot be looked up is not asked: its task fails at start, saying why. */
        if (exec_local_as_user(s->uid) ? exec_local_dir_ok_as(s->uid, s->cwd) == 0
                                       : stat(s->cwd, &st) != 0 || !S_ISDIR(st.st_mode))
            return why_fail(why, why_len, RX_EINVAL, "cwd '%s' is not a directory", s->cwd);
    }
    if (s->stdin_data == NULL && s->stdin_len > 0)
        return why_fail(why, why_len, RX_EINVAL, "stdin has a length but no bytes");
    if (s->stdin_len > lim->stdin_bytes)
        return rx_limits_why(RX_ETOOBIG, why, why_len, "stdin_bytes", s->stdin_len,
                             lim->stdin_bytes);
    if (s->n_args > 0 && s->args == NULL)
        return why_fail(why, why_len, RX_EINVAL, "elem_args has a count but no elements");
    if (!isfinite(s->execution_timeout_s) || s->execution_timeout_s < 0 ||
        s->execution_timeout_s > RX_MAX_TIMEOUT_S)
        return why_fail(why, why_len, RX_EINVAL,
                        "execution_timeout_s must be a number from 0 to %.0f",
                        (double)RX_MAX_TIMEOUT_S);
    /* With neither elem_args nor times_to_run, a server job has num_tasks tasks, or one. */
    err = rx__task_count(s->times_to_run, s->has_args, s->n_args,
                         s->num_tasks > 0 ? s->num_tasks : 1, &count, why, why_len);
    if (err != RX_OK)
        return err;
    if ((uint64_t)count > lim->tasks_per_job)
        return rx_limits_why(RX_ETOOBIG, why, why_len, "tasks_per_job", count, lim->tasks_per_job);
    if (s->kind == RX_WORK_COMMAND) {
        for (size_t i = 0; s->has_args && i < s->n_args; i++) {
            if (s->args[i].len > 0 && s->args[i].data == NULL)
                return why_fail(why, why_len, RX_EINVAL, "elem_args[%zu] has no bytes", i);
            if (s->args[i].len > 0 && memchr(s->args[i].data, '\0', s->args[i].len) != NULL)
                return why_fail(why, why_len, RX_EINVAL,
                                "elem_args[%zu] holds a NUL byte: it cannot reach argv", i);
        }
    }
    *out_n_tasks = count;
    return RX_OK;
}

/*
 * Insert a batch of submissions in one transaction (a savepoint each when there are several, so
 * one bad row fails only its own), commit (one fsync), then add the jobs to memory. Run by the
 * batch's leader, a submitter's own thread, holding the store but not the engine's mutex while
 * it writes and syncs: queries and the scheduler's bookkeeping in memory go on meanwhile.
 *
 * Except when the daemon is idle enough for a new job to start at once (sched_can_start_new: a
 * spare supervisor ready, a slot free, no older job waiting): then the leader takes the mutex
 * first and holds it to the end, and the same transaction records the jobs' first starts
 * (sched_start_new), as a scheduler turn would right after. That saves the scheduler's wake-up,
 * its read of the work, and a second commit on the path of a job submitted to an idle daemon.
 * The job's directory is then made before the commit: one left by a crash before it is removed
 * at the next start (queue_orphan_spools), one left by a failed commit at once.
 */
static void
commit_batch(engine *e, esub *batch)
{
    size_t n = 0, n_ok = 0, first_fresh = 0;
    int at_once, started = 0, deleted = 0;
    ejob *fresh[ENGINE_BATCH_START_MAX];
    size_t n_fresh = 0;
    rx_err err;

    for (esub *s = batch; s != NULL; s = s->next)
        n++;
    /* Room in memory first: once committed, a job must be visible. Only the leader appends. */
    pthread_mutex_lock(&e->mu);
    err = jobs_reserve(e, n);
    at_once = err == RX_OK && sched_can_start_new(e);
    first_fresh = e->n_runs; /* the runs this batch starts, if any, are those from here on */
    if (!at_once)
        pthread_mutex_unlock(&e->mu);
    if (err == RX_OK)
        err = store_begin(e->st);
    for (esub *s = batch; s != NULL; s = s->next) {
        s->err = err;
        if (err != RX_OK)
            continue;
        if (n > 1) {
            s->err = store_savepoint(e->st);
            if (s->err != RX_OK)
                continue;
        }
        s->err = store_job_insert(e->st, &s->row, s->spec, s->spec_len, s->args, s->args_len,
                                  &s->row.id);
        if (s->err != RX_OK) {
            rx__log(RX_LOG_ERROR, "engine: record a submission failed: %s", store_errmsg(e->st));
            (void)snprintf(s->why, sizeof(s->why), "%s", store_errmsg(e->st));
            if (n > 1)
                store_savepoint_rollback(e->st);
        } else {
            if (n > 1)
                store_savepoint_release(e->st);
            n_ok++;
            s->job_mem->id = s->row.id;
            if (n_fresh < ENGINE_BATCH_START_MAX)
                fresh[n_fresh++] = s->job_mem;
        }
    }
    if (err == RX_OK && n_ok == 0) {
        store_rollback(e->st); /* nothing to commit: every row failed */
        if (at_once)
            pthread_mutex_unlock(&e->mu);
        return;
    }
    if (err == RX_OK && at_once) {
        started = sched_start_new(e, fresh, n_fresh) == RX_OK && e->t_head != NULL;
        /* Collections with cleanup since the last transaction: their deletes ride along. */
        if (e->d_head != NULL && store_savepoint(e->st) == RX_OK) {
            deleted = engine_deletes_write(e) == RX_OK;
            if (deleted)
                store_savepoint_release(e->st);
            else
                store_savepoint_rollback(e->st);
        }
    }
    if (err == RX_OK)
        err = started ? engine_commit_touched(e) : store_commit(e->st);
    if (err != RX_OK) {
        rx__log(RX_LOG_ERROR, "engine: commit of %zu submissions failed: %s", n_ok,
                err == RX_ESTORE ? store_errmsg(e->st) : rx_strerror(err));
        for (esub *s = batch; s != NULL; s = s->next) {
            s->err = err == RX_ENOMEM ? RX_ENOMEM : RX_ESTORE;
            (void)snprintf(s->why, sizeof(s->why), "%s",
                           err == RX_ESTORE ? store_errmsg(e->st) : rx_strerror(err));
        }
        if (!started)
            store_rollback(e->st); /* engine_commit_touched rolled back and undid its own */
        if (at_once) {
            /* Nothing was committed: the supervisors claimed get end-of-file instead of "go",
             * and the directories made for the jobs go before the next job can take one of
             * their ids (given again): renamed away, or removed now if the <id>.gone name is
             * taken (an earlier attempt's, not yet removed), never left to a removal in place
             * that would come after that job made its directory (breaker). */
            sched_fresh_abandon(e, first_fresh);
            for (size_t i = 0; i < n_fresh; i++)
                gone_rename(e, fresh[i]->id, 1); /* prepared or not: mkdir may be all it did */
            pthread_mutex_unlock(&e->mu);
            if (!e->hold)
                sched_wake(e); /* to replace the spares claimed */
        }
        return;
    }
    /* Durable. No one waits on a job that did not exist: engine_wait callers are not woken. */
    if (!at_once)
        pthread_mutex_lock(&e->mu);
    for (esub *s = batch; s != NULL; s = s->next) {
        if (s->err != RX_OK)
            continue;
        jobs_append(e, s->job_mem);
        e->submissions_total++;
    }
    if (started) {
        sched_fresh_go(e, first_fresh);
        engine_after_commit(e);
    }
    if (deleted)
        engine_deletes_done(e);
    for (esub *s = batch; s != NULL; s = s->next) {
        if (s->err != RX_OK)
            continue;
        job_fill(s->job_mem, &s->job);
        s->job_mem = NULL;
    }
    pthread_mutex_unlock(&e->mu);
    /* The scheduler watches the runs started here from its next turn on. */
    if (!e->hold)
        sched_wake(e);
}

/*
 * Queue a submission and wait until it is durable. Group commit as leader and followers: a
 * submitter that finds no commit in progress leads; it takes every submission queued (its own
 * included), commits them in its own thread (commit_batch), marks them done and wakes each
 * follower through the follower's own condition variable; then it hands the lead to the first
 * submission that queued meanwhile, which commits the next batch. So one submitter alone pays
 * no thread switch, and submissions that arrive during one fsync share the next one.
 */
static void
submit_wait(engine *e, esub *sub)
{
    esub *batch;

    if (e->q_tail != NULL)
        e->q_tail->next = sub;
    else
        e->q_head = sub;
    e->q_tail = sub;
    if (!e->committing) {
        e->committing = 1;
        sub->lead = 1;
    }
    while (!sub->done && !sub->lead)
        pthread_cond_wait(&sub->cond, &e->q_mu);
    if (sub->done)
        return;
    /* The leader: sub is the head of the queue, so in the batch. */
    batch = e->q_head;
    e->q_head = e->q_tail = NULL;
    pthread_mutex_unlock(&e->q_mu);
    commit_batch(e, batch);
    pthread_mutex_lock(&e->q_mu);
    /* The followers wait on q_mu, so none frees its submission before this loop ends. */
    for (esub *s = batch, *next; s != NULL; s = next) {
        next = s->next;
        s->done = 1;
        if (s != sub)
            pthread_cond_signal(&s->cond);
    }
    sub->lead = 0;
    if (e->q_head != NULL) {
        e->q_head->lead = 1;
        pthread_cond_signal(&e->q_head->cond);
    } else {
        e->committing = 0;
        if (e->q_stop)
            pthread_cond_broadcast(&e->q_idle);
    }
}

rx_err
engine_submit(engine *e, const engine_spec *spec, engine_job *out_job, char *why, size_t why_len)
{
    esub sub;
    store_work w;
    uint64_t n_tasks = 0;
    char *fn_argv[2] = {NULL, NULL};
    int reserved = 0;
    rx_err err;

    if (why != NULL && why_len > 0)
        why[0] = '\0';
    last_errmsg[0] = '\0';
    if (e == NULL || out_job == NULL)
        return why_fail(why, why_len, RX_EINVAL, "no engine or no place for the job");
    err = check_spec(spec, &e->limits, &n_tasks, why, why_len);
    if (err != RX_OK)
        return err;
    /* queued_jobs_per_user: the uid's jobs not yet ended, this one reserved until committed
     * (then jobs_append counts it), so concurrent submissions cannot overshoot. */
    pthread_mutex_lock(&e->mu);
    {
        uint64_t *n = uid_count(e, spec->uid, 1);

        if (n != NULL && *n >= e->limits.queued_jobs_per_user)
            err = rx_limits_why(RX_ELIMIT, why, why_len, "queued_jobs_per_user", *n + 1,
                                e->limits.queued_jobs_per_user);
        else if (n != NULL) {
            (*n)++;
            reserved = 1;
        }
    }
    pthread_mutex_unlock(&e->mu);
    if (err != RX_OK)
        return err;

    memset(&sub, 0, sizeof(sub));
    memset(&w, 0, sizeof(w));
    w.kind = spec->kind;
    if (spec->kind == RX_WORK_FUNCTION) {
        fn_argv[0] = spec->argv[0]; /* the program; the function name says what it runs */
        w.argv = fn_argv;
        w.function = spec->function_name;
    } else {
        w.argv = spec->argv;
    }
    w.env = spec->env;
    w.cwd = spec->cwd;
    w.stdin_data = spec->stdin_data;
    w.stdin_len = spec->stdin_len;
    err = store_work_encode(&w, &sub.spec, &sub.spec_len);
    if (err == RX_OK && spec->has_args)
        err = store_args_encode(spec->args, spec->n_args, &sub.args, &sub.args_len);
    if (err != RX_OK)
        goto done;
    sub.row.uid = spec->uid;
    sub.row.created_s = engine_now_s();
    sub.row.status = RX_JOB_QUEUED;
    sub.row.kind = spec->kind;
    sub.row.n_tasks = n_tasks;
    sub.row.num_tasks = spec->num_tasks;
    sub.row.task_chunk_size = spec->task_chunk_size;
    sub.row.continue_on_failure = spec->continue_on_failure ? 1 : 0;
    sub.row.timeout_ms = (int64_t)ceil(spec->execution_timeout_s * 1000.0);
    sub.row.console_output = spec->console_output ? 1 : 0;
    sub.row.auto_cleanup = spec->auto_cleanup ? 1 : 0;
    sub.row.stop_task = -1;
    sub.row.has_args = spec->has_args ? 1 : 0;
    sub.job_mem = job_from_row(&sub.row);
    if (sub.job_mem == NULL) {
        err = RX_ENOMEM;
        goto done;
    }

    pthread_mutex_lock(&e->q_mu);
    if (e->q_stop) {
        pthread_mutex_unlock(&e->q_mu);
        err = why_fail(why, why_len, RX_ECONTEXT, "the daemon is shutting down");
        goto done;
    }
    pthread_cond_init(&sub.cond, NULL);
    submit_wait(e, &sub);
    pthread_mutex_unlock(&e->q_mu);
    pthread_cond_destroy(&sub.cond);
    err = sub.err;
    if (err == RX_OK)
        *out_job = sub.job;
    else
        (void)why_fail(why, why_len, err, "the job could not be recorded: %s",
                       sub.why[0] != '\0' ? sub.why : rx_strerror(err));
done:
    if (reserved) {
        pthread_mutex_lock(&e->mu);
        uid_count_add(e, spec->uid, -1);
        pthread_mutex_unlock(&e->mu);
    }
    if (err == RX_ENOMEM && why != NULL && why_len > 0 && why[0] == '\0')
        (void)why_fail(why, why_len, err, "out of memory");
    job_free(sub.job_mem);
    rx__free(sub.spec);
    rx__free(sub.args);
    return err;
}

/* ---------------------------------------------------------------------------------------------
 * Open, recovery, close
 * ------------------------------------------------------------------------------------------- */

static int
mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, mode) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static rx_err
load_job(const store_job_row *row, void *user)
{
    engine *e = user;
    ejob *j;

    if (jobs_reserve(e, 1) != RX_OK)
        return RX_ENOMEM;
    j = job_from_row(row);
    if (j == NULL)
        return RX_ENOMEM;
    jobs_append(e, j);
    return RX_OK;
}

typedef struct load_ctx {
    engine *e;
    int64_t *holes; /* jobs whose rows are not 0..max: a task was put back */
    size_t n_holes;
    size_t cap_holes;
    store_task_row *running; /* copies (error NULL) */
    size_t n_running;
    size_t cap_running;
    ejob *hole_job;
    uint64_t expect;
} load_ctx;

static rx_err
load_totals(const store_task_totals *t, void *user)
{
    load_ctx *c = user;
    ejob *j = engine_find(c->e, t->job_id);

    if (j == NULL)
        return RX_OK;
    j->running = t->running;
    j->ok = t->ok;
    j->failed = t->failed;
    j->next_task = t->max_idx < 0 ? 0 : (uint64_t)t->max_idx + 1;
    if (t->rows != j->next_task) {
        if (c->n_holes == c->cap_holes) {
            size_t cap = c->cap_holes ? c->cap_holes * 2 : 8;
            int64_t *p = rx__realloc(c->holes, cap * sizeof(*p));

            if (p == NULL)
                return RX_ENOMEM;
            c->holes = p;
            c->cap_holes = cap;
        }
        c->holes[c->n_holes++] = j->id;
    }
    return RX_OK;
}

static rx_err
load_hole(const store_task_row *row, void *user)
{
    load_ctx *c = user;

    while (c->expect < row->idx) {
        rx_err err = engine_requeue(c->hole_job, c->expect++);

        if (err != RX_OK)
            return err;
    }
    c->expect = row->idx + (row->running ? row->run_count : 1);
    return RX_OK;
}

static rx_err
load_running(const store_task_row *row, void *user)
{
    load_ctx *c = user;

    if (c->n_running == c->cap_running) {
        size_t cap = c->cap_running ? c->cap_running * 2 : 16;
        store_task_row *p = rx__realloc(c->running, cap * sizeof(*p));

        if (p == NULL)
            return RX_ENOMEM;
        c->running = p;
        c->cap_running = cap;
    }
    c->running[c->n_running] = *row;
    c->running[c->n_running++].error = NULL;
    return RX_OK;
}

/* Spool directories whose job is gone (removal interrupted by a crash, or still queued) are
 * removed: <id> without a job, and every <id>.gone. Committed ids are never reused
 * (AUTOINCREMENT), and this runs before any submission, so neither can be a live job's; an id a
 * crash left uncommitted can be given again, so its directory is out of the way (gone_rename)
 * before this returns. */
static void
queue_orphan_spools(engine *e)
{
    char path[PATH_MAX];
    DIR *d;

    if (snprintf(path, sizeof(path), "%s/spool", e->state_dir) >= (int)sizeof(path))
        return;
    d = opendir(path);
    if (d == NULL)
        return;
    for (;;) {
        struct dirent *ent = readdir(d);
        int64_t id;

        if (ent == NULL)
            break;
        size_t len = strlen(ent->d_name);
        char num[32];

        if (len > strlen(GONE_SUFFIX) && len - strlen(GONE_SUFFIX) < sizeof(num) &&
            strcmp(ent->d_name + len - strlen(GONE_SUFFIX), GONE_SUFFIX) == 0) {
            memcpy(num, ent->d_name, len - strlen(GONE_SUFFIX));
            num[len - strlen(GONE_SUFFIX)] = '\0';
            if (rx__parse_i64(num, 1, INT64_MAX, &id) == RX_OK)
                gone_push(e, id, 1);
            continue;
        }
        if (rx__parse_i64(ent->d_name, 1, INT64_MAX, &id) != RX_OK)
            continue;
        if (engine_find(e, id) == NULL)
            gone_rename(e, id, 1);
    }
    closedir(d);
}

/* Reconcile the store with reality (the design note at the top of this file). */
static rx_err
recover(engine *e, char *errbuf, size_t errlen)
{
    load_ctx c;
    rx_err err;

    memset(&c, 0, sizeof(c));
    c.e = e;
    err = store_jobs_each(e->st, load_job, e);
    if (err == RX_OK)
        err = store_task_totals_each(e->st, load_totals, &c);
    for (size_t i = 0; err == RX_OK && i < c.n_holes; i++) {
        c.hole_job = engine_find(e, c.holes[i]);
        c.expect = 0;
        err = store_tasks_of_job_each(e->st, c.holes[i], load_hole, &c);
    }
    if (err == RX_OK)
        err = store_tasks_running_each(e->st, load_running, &c);
    if (err != RX_OK) {
        (void)snprintf(errbuf, errlen, "engine: load jobs failed: %s",
                       err == RX_ESTORE ? store_errmsg(e->st) : rx_strerror(err));
        goto done;
    }

    err = store_begin(e->st);
    if (err != RX_OK) {
        (void)snprintf(errbuf, errlen, "%s", store_errmsg(e->st));
        goto done;
    }
    for (size_t i = 0, rows, count; i < c.n_running; i += rows) {
        const store_task_row *row = &c.running[i];
        ejob *j = engine_find(e, row->job_id);
        exec_shim sh = {.pid = row->shim_pid,
                        .sid = row->shim_pid,
                        .pidfd = -1,
                        .start_time = row->shim_start,
                        .go_fd = -1};
        char dir[PATH_MAX];
        spool_run_exit rec;
        rx_err rec_err = RX_EIO;

        /* A run (a chunk): one row for its tasks (schema.c v3), or rows of consecutive tasks of
         * one job under one supervisor (as version 2 wrote them). */
        count = row->run_count;
        for (rows = 1; i + rows < c.n_running; rows++) {
            const store_task_row *next = &c.running[i + rows];

            if (next->job_id != row->job_id || next->idx != row->idx + count ||
                next->shim_pid != row->shim_pid || next->shim_start != row->shim_start)
                break;
            count += next->run_count;
        }

        /* Under Slurm a running task has no local supervisor: the executor's first poll
         * reconciles it with Slurm and its exit record (exec_slurm.c). */
        if (j == NULL || e->slurm != NULL)
            continue;
        err = engine_touch(e, j);
        if (err != RX_OK)
            break;
        if (exec_local_adopt(row->shim_pid, row->shim_start, &sh)) {
            erun *r;

            if (e->n_runs == e->cap_runs) {
                size_t cap = e->cap_runs ? e->cap_runs * 2 : 16;
                erun *p = rx__realloc(e->runs, cap * sizeof(*p));

                if (p == NULL) {
                    close(sh.pidfd);
                    err = RX_ENOMEM;
                    break;
                }
                e->runs = p;
                e->cap_runs = cap;
            }
            r = &e->runs[e->n_runs++];
            memset(r, 0, sizeof(*r));
            r->job = j;
            r->idx = row->idx;
            r->count = count;
            r->shim = sh;
            r->started_s = row->started_s;
            j->shims++;
            rx__log(RX_LOG_INFO,
                    "engine: adopted task %" PRIu64 " of job %" PRId64
                    " (supervisor %ld, a run of %zu)",
                    row->idx, j->id, (long)sh.pid, count);
            continue;
        }
        /* Gone: its record, read only now, is complete if it exists (written before exit). */
        memset(&rec, 0, sizeof(rec));
        if (spool_job_dir(e->state_dir, j->id, dir, sizeof(dir)) == 0)
            rec_err = spool_run_exit_read(dir, row->idx, count, &rec);
        j->shims++; /* engine_run_ended counts it out */
        err = engine_run_ended(e, j, row->idx, count, &sh, row->started_s, &rec, rec_err);
        spool_run_exit_free(&rec);
        if (err != RX_OK)
            break;
    }
    if (err == RX_OK && e->slurm != NULL)
        exec_slurm_recover(e);
    /* Every job not over is looked at again: counts may have moved, a cancel may be pending. */
    for (size_t i = 0; err == RX_OK && i < e->n_jobs; i++) {
        ejob *j = e->jobs[i];

        if (!rx_job_status_is_terminal(j->status) || j->cleanup_requested)
            err = engine_touch(e, j);
        if (j->status == RX_JOB_CANCELED)
            engine_queue_gone(e, j->id); /* removal may have been cut short */
    }
    if (err == RX_OK)
        err = engine_commit_touched(e);
    else
        store_rollback(e->st);
    if (err != RX_OK) {
        (void)snprintf(errbuf, errlen, "engine: recovery failed: %s",
                       err == RX_ESTORE ? store_errmsg(e->st) : rx_strerror(err));
        goto done;
    }
    engine_after_commit(e);
    queue_orphan_spools(e);
done:
    rx__free(c.holes);
    rx__free(c.running);
    return err;
}

const rx_limits *
engine_limits(const engine *e)
{
    return &e->limits;
}

rx_err
engine_open(const engine_opts *opts, engine **out_engine, char *errbuf, size_t errlen)
{
    engine *e = NULL;
    pthread_condattr_t ca;
    char path[PATH_MAX];
    rx_err err = RX_EINVAL;

    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    if (opts == NULL || out_engine == NULL || opts->state_dir == NULL ||
        opts->state_dir[0] == '\0' || opts->self_exe == NULL || opts->slots < 1 ||
        opts->grace_ms < 0) {
        (void)snprintf(errbuf, errlen, "engine: state_dir, self_exe and slots >= 1 are required");
        return RX_EINVAL;
    }
    if (access(opts->self_exe, X_OK) != 0) {
        (void)snprintf(errbuf, errlen, "engine: '%s' is not executable: %s", opts->self_exe,
                       strerror(errno));
        return RX_EINVAL;
    }
    e = rx__calloc(1, sizeof(*e));
    if (e == NULL)
        return RX_ENOMEM;
    e->wake_fd = -1;
    e->shim_fd = -1;
    pthread_mutex_init(&e->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->changed, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&e->q_mu, NULL);
    pthread_cond_init(&e->q_idle, NULL);
    pthread_mutex_init(&e->rm_mu, NULL);
    pthread_cond_init(&e->rm_cond, NULL);
    e->state_dir = rx__strdup(opts->state_dir);
    e->self_exe = rx__strdup(opts->self_exe);
    e->slots = opts->slots;
    e->hold = opts->hold;
    e->grace_ms = opts->grace_ms > 0 ? opts->grace_ms : DEFAULT_GRACE_MS;
    if (opts->limits != NULL)
        e->limits = *opts->limits;
    else
        rx_limits_default(&e->limits);
    /* Run-time limits, enforced by the supervisors (limits.h). */
    e->output_bytes = e->limits.output_bytes;
    e->result_bytes = e->limits.result_bytes > 0 ? e->limits.result_bytes : RX_RESULT_MAX_BYTES;
    err = exec_local_shim_open(opts->self_exe, opts->shim_exe, &e->shim_exe, &e->shim_fd, errbuf,
                               errlen);
    if (err != RX_OK)
        goto fail;
    e->system = opts->system;
    if (opts->system &&
        (geteuid() != 0 || (opts->executor != NULL && strcmp(opts->executor, "local") != 0))) {
        (void)snprintf(errbuf, errlen, "engine: system mode needs root and the local executor");
        err = RX_EINVAL;
        goto fail;
    }
    if (opts->system) {
        struct stat st;

        /* Each task's supervisor is exec'd as its user: one the users may not run would fail
         * every task, one by one, long after the start. */
        if (fstat(e->shim_fd, &st) != 0 || (st.st_mode & S_IXOTH) == 0) {
            (void)snprintf(errbuf, errlen,
                           "system: the task supervisor '%s' is not executable by other users "
                           "(mode %04o): their tasks could not start; chmod o+x it",
                           e->shim_exe, (unsigned)(st.st_mode & 07777));
            err = RX_EINVAL;
            goto fail;
        }
    }
    if (opts->executor != NULL && strcmp(opts->executor, "slurm") == 0) {
        err = exec_slurm_new(opts, &e->slurm, errbuf, errlen);
        if (err != RX_OK)
            goto fail;
    } else if (opts->executor != NULL && strcmp(opts->executor, "local") != 0) {
        (void)snprintf(errbuf, errlen, "engine: unknown executor '%s' (local or slurm)",
                       opts->executor);
        err = RX_EINVAL;
        goto fail;
    }
    if (e->state_dir == NULL || e->self_exe == NULL) {
        err = RX_ENOMEM;
        goto fail;
    }
    if (snprintf(path, sizeof(path), "%s/spool", e->state_dir) >= (int)sizeof(path)) {
        (void)snprintf(errbuf, errlen, "engine: state_dir is too long");
        goto fail;
    }
    if (mkdir_p(path, 0700) != 0) {
        (void)snprintf(errbuf, errlen, "engine: create '%s' failed: %s", path, strerror(errno));
        err = RX_ESYSTEM;
        goto fail;
    }
    err = store_open(e->state_dir, &e->st, errbuf, errlen);
    if (err != RX_OK)
        goto fail;
    e->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (e->wake_fd < 0) {
        (void)snprintf(errbuf, errlen, "engine: eventfd failed: %s", strerror(errno));
        err = RX_ESYSTEM;
        goto fail;
    }
    pthread_mutex_lock(&e->mu);
    err = recover(e, errbuf, errlen);
    pthread_mutex_unlock(&e->mu);
    if (err != RX_OK)
        goto fail;
    if (pthread_create(&e->rm_thread, NULL, remover_main, e) != 0) {
        (void)snprintf(errbuf, errlen, "engine: start the remover thread failed");
        err = RX_ESYSTEM;
        goto fail;
    }
    e->rm_started = 1;
    if (pthread_create(&e->sched_thread, NULL, e->slurm ? exec_slurm_main : sched_main, e) != 0) {
        (void)snprintf(errbuf, errlen, "engine: start the scheduler thread failed");
        err = RX_ESYSTEM;
        goto fail;
    }
    e->sched_started = 1;
    *out_engine = e;
    return RX_OK;

fail:
    if (err == RX_ENOMEM && errbuf != NULL && errlen > 0 && errbuf[0] == '\0')
        (void)snprintf(errbuf, errlen, "engine: out of memory");
    engine_close(e);
    return err;
}

void
engine_close(engine *e)
{
    if (e == NULL)
        return;
    /* Submissions already queued are committed first: their callers are waiting. */
    pthread_mutex_lock(&e->q_mu);
    e->q_stop = 1;
    while (e->committing)
        pthread_cond_wait(&e->q_idle, &e->q_mu);
    pthread_mutex_unlock(&e->q_mu);
    if (e->sched_started) {
        pthread_mutex_lock(&e->mu);
        e->stopping = 1;
        pthread_mutex_unlock(&e->mu);
        sched_wake(e);
        pthread_join(e->sched_thread, NULL);
    }
    sched_reaps_finish(e);
    if (e->d_head != NULL) {
        /* The scheduler is gone: the deletes it did not get to, in one transaction. */
        rx_err err = store_begin(e->st);

        if (err == RX_OK)
            err = engine_deletes_write(e);
        if (err == RX_OK)
            err = store_commit(e->st);
        if (err == RX_OK)
            engine_deletes_done(e);
        else
            store_rollback(e->st); /* the jobs are back at the next start, results and all */
    }
    /* The supervisors go on; the next engine_open adopts them. Closing go_fd tells those that
     * wait for "k" that their end is not recorded: they sync their exit records and exit. */
    for (size_t i = 0; i < e->n_runs; i++) {
        if (e->runs[i].shim.pidfd >= 0)
            close(e->runs[i].shim.pidfd);
        exec_local_abandon(&e->runs[i].shim);
        spool_run_exit_free(&e->runs[i].rec);
    }
    remover_stop(e);
    for (size_t i = 0; i < e->n_jobs; i++)
        job_free(e->jobs[i]);
    store_close(e->st);
    if (e->wake_fd >= 0)
        close(e->wake_fd);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->changed);
    pthread_mutex_destroy(&e->q_mu);
    pthread_cond_destroy(&e->q_idle);
    pthread_mutex_destroy(&e->rm_mu);
    pthread_cond_destroy(&e->rm_cond);
    rx__free(e->jobs);
    rx__free(e->runs);
    rx__free(e->gone);
    rx__free(e->uid_counts);
    rx__free(e->state_dir);
    rx__free(e->self_exe);
    rx__free(e->shim_exe);
    if (e->shim_fd >= 0)
        close(e->shim_fd);
    exec_slurm_free(e->slurm);
    rx__free(e);
}

/* ---------------------------------------------------------------------------------------------
 * Queries and operations
 * ------------------------------------------------------------------------------------------- */

rx_err
engine_get(engine *e, uid_t uid, int64_t id, engine_job *out_job)
{
    ejob *j;
    rx_err err = RX_ENOENT;

    if (e == NULL || out_job == NULL)
        return RX_EINVAL;
    pthread_mutex_lock(&e->mu);
    j = find_visible(e, uid, id);
    if (j != NULL) {
        job_fill(j, out_job);
        err = RX_OK;
    }
    pthread_mutex_unlock(&e->mu);
    return err;
}

rx_err
engine_wait(engine *e, uid_t uid, int64_t id, int64_t timeout_ms, engine_job *out_job)
{
    struct timespec deadline;
    rx_err err;

    if (e == NULL || out_job == NULL)
        return RX_EINVAL;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (timeout_ms >= 0) {
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&e->mu);
    for (;;) {
        ejob *j = find_visible(e, uid, id);
        int rc = 0;

        if (j == NULL) {
            err = RX_ENOENT;
            break;
        }
        if (rx_job_status_is_terminal(j->status)) {
            job_fill(j, out_job);
            err = RX_OK;
            break;
        }
        if (timeout_ms >= 0)
            rc = pthread_cond_timedwait(&e->changed, &e->mu, &deadline);
        else
            pthread_cond_wait(&e->changed, &e->mu);
        if (rc == ETIMEDOUT) {
            j = find_visible(e, uid, id);
            if (j == NULL) {
                err = RX_ENOENT;
            } else {
                job_fill(j, out_job);
                err = rx_job_status_is_terminal(j->status) ? RX_OK : RX_ETIMEDOUT;
            }
            break;
        }
    }
    pthread_mutex_unlock(&e->mu);
    return err;
}

/* Cancel j (QUEUED or RUNNING). Caller holds mu. RX_OK; RX_ESTORE; RX_ENOMEM. */
static rx_err
job_cancel(engine *e, ejob *j, int and_cleanup)
{
    rx_err err;

    if (j->cancel_requested && (!and_cleanup || j->cleanup_requested))
        return RX_OK;
    err = store_begin(e->st);
    if (err != RX_OK)
        return err;
    err = engine_touch(e, j);
    if (err != RX_OK) {
        store_rollback(e->st);
        return err;
    }
    j->cancel_requested = 1;
    if (and_cleanup)
        j->cleanup_requested = 1;
    err = engine_commit_touched(e);
    if (err != RX_OK)
        return err;
    engine_after_commit(e); /* signals its supervisors; CANCELED at once if none ran */
    return RX_OK;
}

rx_err
engine_cancel(engine *e, uid_t uid, int64_t id, int *out_canceled, engine_job *out_job)
{
    ejob *j;
    rx_err err = RX_OK;
    int canceled = 0;

    if (e == NULL)
        return RX_EINVAL;
    last_errmsg[0] = '\0';
    pthread_mutex_lock(&e->mu);
    j = find_visible(e, uid, id);
    if (j == NULL) {
        pthread_mutex_unlock(&e->mu);
        return RX_ENOENT;
    }
    if (j->status == RX_JOB_QUEUED || j->status == RX_JOB_RUNNING) {
        err = store_failed(e, job_cancel(e, j, 0));
        canceled = err == RX_OK;
    }
    if (err == RX_OK && out_job != NULL)
        job_fill(j, out_job);
    pthread_mutex_unlock(&e->mu);
    if (err == RX_OK && out_canceled != NULL)
        *out_canceled = canceled;
    return err;
}

typedef struct slots_ctx {
    engine_results *res;
    rx_work_kind kind;
} slots_ctx;

static rx_err
fill_slot(const store_task_row *row, void *user)
{
    slots_ctx *c = user;
    engine_slot *s;

    if (row->idx >= c->res->n || row->running)
        return RX_OK;
    s = &c->res->slots[row->idx];
    s->state = row->task_state;
    /* rx_results_exit_status: a command's exit status, -1 for function work (no command). */
    s->exit_status = c->kind == RX_WORK_COMMAND ? row->exit_status : -1;
    s->signal = row->signal;
    s->started_s = row->started_s;
    s->ended_s = row->ended_s >= row->started_s ? row->ended_s : row->started_s;
    s->result_run = row->result_run;
    s->result_off = row->result_off;
    s->result_len = row->result_len;
    if (row->task_state != RX_TASK_OK) {
        s->error = rx__strdup(row->error ? row->error : rx_task_state_name(row->task_state));
        if (s->error == NULL)
            return RX_ENOMEM;
    }
    return RX_OK;
}

static void
results_free_only(engine_results *res)
{
    if (res == NULL)
        return;
    for (size_t i = 0; res->slots != NULL && i < res->n; i++) {
        rx__free(res->slots[i].error);
        rx__free(res->slots[i].value);
    }
    rx__free(res->slots);
    rx__free(res->values_dir);
    rx__free(res);
}

rx_err
engine_results_end(engine_results *res, int delivered)
{
    engine *e;
    ejob *j;
    rx_err err = RX_OK;

    if (res == NULL)
        return RX_OK;
    e = res->engine;
    j = res->pinned;
    if (e == NULL || j == NULL) {
        results_free_only(res);
        return RX_OK;
    }
    pthread_mutex_lock(&e->mu);
    if (res->cleanup && delivered && !j->detached && !j->delete_pending && e->slurm == NULL &&
        e->sched_started && !e->stopping) {
        /* Hidden already: its delete goes into the engine's next transaction (sched.h). */
        if (e->d_head == NULL) {
            e->d_due_ms = rx__now_ms() + ENGINE_DELETE_DELAY_MS;
            sched_wake(e); /* to poll until d_due_ms at most */
        }
        j->delete_pending = 1;
        j->d_next = e->d_head;
        e->d_head = j;
    } else if (res->cleanup && delivered && !j->detached && !j->delete_pending) {
        err = store_begin(e->st);
        if (err == RX_OK)
            err = store_job_delete(e->st, j->id);
        if (err == RX_OK)
            err = store_commit(e->st);
        if (err != RX_OK) {
            rx__log(RX_LOG_ERROR,
                    "engine: delete job %" PRId64 " after its results were collected failed: %s; "
                    "it is kept",
                    j->id, store_errmsg(e->st));
            (void)store_failed(e, RX_ESTORE);
            store_rollback(e->st);
            err = RX_ESTORE;
        } else {
            engine_detach(e, j); /* still pinned: freed by the unpin below */
        }
    }
    if (res->cleanup && !j->delete_pending)
        j->claimed = 0; /* delivered and deleted, or visible again: nothing was deleted */
    pthread_cond_broadcast(&e->changed);
    job_unpin(e, j);
    pthread_mutex_unlock(&e->mu);
    results_free_only(res);
    return err;
}

rx_err
engine_deletes_write(engine *e)
{
    for (ejob *j = e->d_head; j != NULL; j = j->d_next) {
        rx_err err = store_job_delete(e->st, j->id);

        if (err != RX_OK) {
            rx__log(RX_LOG_ERROR,
                    "engine: delete job %" PRId64 " after its results were collected failed: %s; "
                    "trying again",
                    j->id, store_errmsg(e->st));
            return err;
        }
    }
    return RX_OK;
}

void
engine_deletes_done(engine *e)
{
    while (e->d_head != NULL) {
        ejob *j = e->d_head;

        e->d_head = j->d_next;
        j->d_next = NULL;
        j->delete_pending = 0;
        j->claimed = 0;
        engine_detach(e, j); /* freed now, or at its last unpin */
    }
    pthread_cond_broadcast(&e->changed);
}

void
engine_results_free(engine_results *res)
{
    (void)engine_results_end(res, 0);
}

rx_err
engine_get_results(engine *e, uid_t uid, int64_t id, int auto_cleanup, engine_results **out_results)
{
    engine_results *res = NULL;
    char dir[PATH_MAX];
    slots_ctx c;
    ejob *j;
    int cleanup;
    rx_err err;

    if (e == NULL || out_results == NULL)
        return RX_EINVAL;
    last_errmsg[0] = '\0';
    if (spool_job_dir(e->state_dir, id, dir, sizeof(dir)) != 0)
        return RX_ENOENT;
    pthread_mutex_lock(&e->mu);
    j = find_visible(e, uid, id);
    if (j == NULL) {
        err = RX_ENOENT;
        goto unlock;
    }
    if (j->status == RX_JOB_QUEUED || j->status == RX_JOB_RUNNING) {
        err = RX_ENOTFINISHED;
        goto unlock;
    }
    if (j->status == RX_JOB_CANCELED) {
        err = RX_ECANCELED;
        goto unlock;
    }
    cleanup = auto_cleanup < 0 ? j->auto_cleanup : auto_cleanup != 0;
    res = rx__calloc(1, sizeof(*res));
    if (res != NULL) {
        res->n = (size_t)j->n_tasks;
        res->slots = rx__calloc(res->n, sizeof(*res->slots));
        res->values_dir = rx__strdup(dir);
    }
    if (res == NULL || res->slots == NULL || res->values_dir == NULL) {
        err = store_failed(e, RX_ENOMEM);
        goto unlock;
    }
    for (size_t i = 0; i < res->n; i++) {
        res->slots[i].state = RX_TASK_NOT_RUN;
        res->slots[i].exit_status = -1;
    }
    c.res = res;
    c.kind = j->kind;
    err = store_tasks_of_job_each(e->st, j->id, fill_slot, &c);
    if (err != RX_OK)
        (void)store_failed(e, err);
    for (size_t i = 0; err == RX_OK && i < res->n; i++) {
        engine_slot *s = &res->slots[i];
        char msg[160];

        if (s->state != RX_TASK_NOT_RUN || s->error != NULL)
            continue;
        (void)snprintf(msg, sizeof(msg), RESULT_NOT_RUN_TEXT, j->stop_task);
        s->error = rx__strdup(msg);
        if (s->error == NULL)
            err = store_failed(e, RX_ENOMEM);
    }
    if (err != RX_OK)
        goto unlock;
    job_fill(j, &res->job);
    /* Claimed: hidden from everyone else at once, so of two racing collectors the second finds
     * no job; pinned: its spool stays while the values are streamed. engine_results_end deletes
     * it once the body was delivered, or un-hides it, so a failure deletes nothing. */
    if (cleanup)
        j->claimed = 1;
    j->pins++;
    res->engine = e;
    res->pinned = j;
    res->cleanup = cleanup;
    pthread_mutex_unlock(&e->mu);
    *out_results = res;
    return RX_OK;

unlock:
    pthread_mutex_unlock(&e->mu);
    results_free_only(res);
    return err;
}

rx_err
engine_output_paths(engine *e, uid_t uid, int64_t id, char ***out_paths, size_t *out_n)
{
    char dir[PATH_MAX], path[PATH_MAX];
    char **paths;
    size_t n;
    ejob *j;

    if (e == NULL || out_paths == NULL || out_n == NULL)
        return RX_EINVAL;
    pthread_mutex_lock(&e->mu);
    j = find_visible(e, uid, id);
    n = j != NULL ? (size_t)j->n_tasks : 0;
    pthread_mutex_unlock(&e->mu);
    if (j == NULL)
        return RX_ENOENT;
    /* Plain malloc'd (rx__malloc is malloc underneath): the caller frees with free(). */
    paths = rx__calloc(n, sizeof(*paths));
    if (paths == NULL)
        return RX_ENOMEM;
    (void)spool_job_dir(e->state_dir, id, dir, sizeof(dir));
    for (size_t i = 0; i < n; i++) {
        (void)spool_task_path(dir, i, ".out", path, sizeof(path));
        paths[i] = rx__strdup(path);
        if (paths[i] == NULL) {
            for (size_t k = 0; k < i; k++)
                rx__free(paths[k]);
            rx__free(paths);
            return RX_ENOMEM;
        }
    }
    *out_paths = paths;
    *out_n = n;
    return RX_OK;
}

rx_err
engine_cleanup(engine *e, uid_t uid, int64_t id, int force, int *out_cleaned, char *warning,
               size_t warning_len)
{
    ejob *j;
    rx_err err = RX_OK;
    int cleaned = 0;

    if (e == NULL)
        return RX_EINVAL;
    if (warning != NULL && warning_len > 0)
        warning[0] = '\0';
    last_errmsg[0] = '\0';
    pthread_mutex_lock(&e->mu);
    j = find_visible(e, uid, id);
    if (j == NULL) {
        pthread_mutex_unlock(&e->mu);
        return RX_ENOENT;
    }
    switch (j->status) {
    case RX_JOB_FAILED:
    case RX_JOB_CANCELED:
        err = job_delete(e, j);
        cleaned = err == RX_OK;
        break;
    case RX_JOB_FINISHED:
        if (force) {
            err = job_delete(e, j);
            cleaned = err == RX_OK;
        } else {
            /* True whether its results were collected (without cleanup) or not. */
            (void)why_fail(warning, warning_len, RX_OK,
                           "job %" PRId64 " is FINISHED: cleaning it up would delete its results; "
                           "use force (rxjob cleanup --force) to delete them, or collect them "
                           "with rx_get_job_results (rxjob results)",
                           id);
        }
        break;
    case RX_JOB_QUEUED:
    case RX_JOB_RUNNING:
        if (force) {
            /* Canceled, then removed once its processes are gone (at once if none ran). */
            err = store_failed(e, job_cancel(e, j, 1));
            cleaned = err == RX_OK;
        } else {
            (void)why_fail(warning, warning_len, RX_OK,
                           "job %" PRId64 " is %s: use force to cancel and remove it", id,
                           rx_job_status_name(j->status));
        }
        break;
    case RX_JOB_UNDETERMINED:
    case RX_JOB_STATUS_COUNT:
        break;
    }
    pthread_mutex_unlock(&e->mu);
    if (err == RX_OK && out_cleaned != NULL)
        *out_cleaned = cleaned;
    return err;
}

static int
list_match(const ejob *j, uid_t uid, unsigned states, double since_s, double until_s)
{
    if (j->cleanup_requested || j->claimed || (uid != 0 && j->uid != uid))
        return 0;
    if (states != 0 && !(states & (1u << j->status)))
        return 0;
    if (since_s > 0 && j->created_s < since_s)
        return 0;
    if (until_s > 0 && j->created_s > until_s)
        return 0;
    return 1;
}

rx_err
engine_list(engine *e, uid_t uid, unsigned states, double since_s, double until_s,
            engine_job **out_jobs, size_t *out_n)
{
    engine_job *jobs = NULL;
    size_t n = 0, k = 0;

    if (e == NULL || out_jobs == NULL || out_n == NULL)
        return RX_EINVAL;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->n_jobs; i++)
        n += (size_t)list_match(e->jobs[i], uid, states, since_s, until_s);
    if (n > 0) {
        jobs = rx__calloc(n, sizeof(*jobs)); /* free()able: rx__malloc is malloc */
        if (jobs == NULL) {
            pthread_mutex_unlock(&e->mu);
            return RX_ENOMEM;
        }
        for (size_t i = 0; i < e->n_jobs; i++)
            if (list_match(e->jobs[i], uid, states, since_s, until_s))
                job_fill(e->jobs[i], &jobs[k++]);
    }
    pthread_mutex_unlock(&e->mu);
    *out_jobs = jobs;
    *out_n = n;
    return RX_OK;
}

void
engine_get_stats(engine *e, engine_stats *out_stats)
{
    memset(out_stats, 0, sizeof(*out_stats));
    if (e == NULL)
        return;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->n_jobs; i++)
        if (!e->jobs[i]->cleanup_requested && !e->jobs[i]->claimed &&
            (unsigned)e->jobs[i]->status < RX_JOB_STATUS_COUNT)
            out_stats->jobs_by_status[e->jobs[i]->status]++;
    for (size_t i = 0; i < e->n_runs; i++)
        out_stats->tasks_running += e->runs[i].exited ? 0 : e->runs[i].count;
    out_stats->submissions_total = e->submissions_total;
    out_stats->tasks_started_total = e->tasks_started_total;
    out_stats->slots = e->slots;
    out_stats->hold = e->hold;
    out_stats->executor = e->slurm != NULL ? "slurm" : "local";
    for (const ejob *j = e->a_head; e->slurm != NULL && j != NULL; j = j->a_next)
        out_stats->tasks_running += (size_t)j->running;
    pthread_mutex_unlock(&e->mu);
}
