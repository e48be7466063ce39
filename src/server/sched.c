/*
 * sched.c - the scheduler thread and the rules that move jobs and tasks (see sched.h).
 *
 * One thread does all of a task's life on the daemon side, in a loop:
 *
 *   1. poll the pidfds of the running supervisors and an eventfd (new jobs, shutdown);
 *   2. for each supervisor that exited: reap it (if it is our child) and read its exit record;
 *   3. in ONE transaction: record every ended task, then start tasks while slots are free
 *      (oldest job first, task index order, at most num_tasks per job and `slots` in all) by
 *      spawning their supervisors and recording them as running; COMMIT;
 *   4. only then send "go" to the new supervisors, so a task never runs unless its start is
 *      durable (a supervisor that never gets "go" exits without starting anything).
 *
 * Grouping ends and starts in one transaction means one fsync per loop turn however many tasks
 * ended or started in it. The mutex is held during step 3: readers wait at most one commit.
 *
 * A failed commit undoes everything in memory (engine_touch saved it) and abandons the new
 * supervisors; ended tasks stay marked exited and are recorded at the next turn.
 */
#define _GNU_SOURCE
#include "server/sched.h"

#include "core/internal.h"
#include "store/work.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RETRY_AFTER_FAILURE_MS 200
#define POLL_NO_PIDFD_MS       50
/* A supervisor told "k" exits at once; one still there this long after (stopped or traced by
 * its user) is killed, so that it cannot hold a pidfd of the daemon for ever. */
#define REAP_KILL_MS           10000
/* After a blank spare died waiting, no spare is spawned for this long, milliseconds: one
 * killed at each spawn (a user's loop, a broken supervisor) costs a spawn a second, not a
 * spin. Tasks meanwhile spawn their own supervisors. */
#define SPARE_RESPAWN_MS       1000

double
engine_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
engine_job_counts(const ejob *j, rx__task_counts *c)
{
    uint64_t unstarted = j->n_tasks - j->running - j->ok - j->failed;

    c->total = (size_t)j->n_tasks;
    c->running = (size_t)j->running;
    c->ok = (size_t)j->ok;
    /* Once the job stopped after a failure, tasks that never started never will: NOT_RUN,
     * which is a failure (core/status.h counts it as failed). */
    if (j->stop_task >= 0) {
        c->pending = 0;
        c->failed = (size_t)(j->failed + unstarted);
    } else {
        c->pending = (size_t)unstarted;
        c->failed = (size_t)j->failed;
    }
    /* Slurm may still hold processes of a job being canceled or stopped (tasks never seen
     * running, or supervisors still exiting): one task counts as running until Slurm says
     * nothing of the job is left (exec_slurm.c). */
    if (j->ext_alive && (j->cancel_requested || j->stop_task >= 0) && c->running == 0) {
        if (c->pending > 0)
            c->pending--;
        else if (c->failed > 0)
            c->failed--;
        else
            c->ok--;
        c->running++;
    }
    c->cancel_requested = j->cancel_requested;
}

rx_err
engine_touch(engine *e, ejob *j)
{
    ejob_saved *s = &j->saved;

    if (j->touched)
        return RX_OK;
    s->status = j->status;
    s->ended_s = j->ended_s;
    s->stop_task = j->stop_task;
    s->cancel_requested = j->cancel_requested;
    s->cleanup_requested = j->cleanup_requested;
    s->next_task = j->next_task;
    s->running = j->running;
    s->shims = j->shims;
    s->ok = j->ok;
    s->failed = j->failed;
    s->n_requeue = j->n_requeue;
    s->requeue = NULL;
    if (j->n_requeue > 0) {
        s->requeue = rx__malloc(j->n_requeue * sizeof(*s->requeue));
        if (s->requeue == NULL)
            return RX_ENOMEM;
        memcpy(s->requeue, j->requeue, j->n_requeue * sizeof(*s->requeue));
    }
    j->touched = 1;
    j->deleting = 0;
    j->t_next = e->t_head;
    e->t_head = j;
    return RX_OK;
}

static void
untouch(ejob *j, int undo)
{
    ejob_saved *s = &j->saved;

    if (undo) {
        j->status = s->status;
        j->ended_s = s->ended_s;
        j->stop_task = s->stop_task;
        j->cancel_requested = s->cancel_requested;
        j->cleanup_requested = s->cleanup_requested;
        j->next_task = s->next_task;
        j->running = s->running;
        j->shims = s->shims;
        j->ok = s->ok;
        j->failed = s->failed;
        /* The array only grows, so the saved entries fit. */
        if (s->n_requeue > 0)
            memcpy(j->requeue, s->requeue, s->n_requeue * sizeof(*s->requeue));
        j->n_requeue = s->n_requeue;
        j->deleting = 0;
    }
    rx__free(s->requeue);
    s->requeue = NULL;
    j->touched = 0;
}

/* Undo every job the current transaction touched (it did not commit). */
static void
untouch_all(engine *e)
{
    while (e->t_head != NULL) {
        ejob *j = e->t_head;

        e->t_head = j->t_next;
        untouch(j, 1);
    }
}

int
engine_job_settle(ejob *j)
{
    rx__task_counts c;
    rx_job_status s;

    engine_job_counts(j, &c);
    s = rx__job_status_from_counts(&c);
    if (s == j->status || s == RX_JOB_UNDETERMINED)
        return 0;
    /* Within one transaction a job may start and end (QUEUED -> RUNNING -> FINISHED); any other
     * move the rules forbid (RUNNING back to QUEUED when a task that never ran is put back)
     * leaves the status as it was. */
    if (!rx__status_can_move(j->status, s) &&
        !(rx__status_can_move(j->status, RX_JOB_RUNNING) && rx__status_can_move(RX_JOB_RUNNING, s)))
        return 0;
    j->status = s;
    if (rx_job_status_is_terminal(s))
        j->ended_s = engine_now_s();
    return 1;
}

static rx_err
job_write(engine *e, const ejob *j)
{
    store_job_row row;

    memset(&row, 0, sizeof(row));
    row.id = j->id;
    row.status = j->status;
    row.ended_s = j->ended_s;
    row.cancel_requested = j->cancel_requested;
    row.cleanup_requested = j->cleanup_requested;
    row.stop_task = j->stop_task;
    return store_job_update(e->st, &row);
}

rx_err
engine_commit_touched(engine *e)
{
    rx_err err = RX_OK;

    for (ejob *j = e->t_head; j != NULL && err == RX_OK; j = j->t_next) {
        (void)engine_job_settle(j);
        if (j->cleanup_requested && j->running == 0 && !j->ext_alive) {
            j->deleting = 1;
            err = store_job_delete(e->st, j->id);
        } else {
            err = job_write(e, j);
        }
    }
    if (err == RX_OK)
        err = store_commit(e->st);
    if (err != RX_OK) {
        rx__log(RX_LOG_ERROR, "%s", store_errmsg(e->st));
        store_rollback(e->st);
        untouch_all(e);
        return err;
    }
    return RX_OK;
}

static void
signal_runs(engine *e, const ejob *j)
{
    for (size_t i = 0; i < e->n_runs; i++) {
        erun *r = &e->runs[i];

        if (r->job != j || r->signaled || r->exited)
            continue;
        r->signaled = 1;
        if (exec_local_signal(&r->shim, SIGTERM) != 0 && errno != ESRCH)
            rx__log(RX_LOG_WARN, "engine: signal supervisor %ld of job %" PRId64 " failed: %s",
                    (long)r->shim.pid, j->id, strerror(errno));
    }
}

void
engine_after_commit(engine *e)
{
    while (e->t_head != NULL) {
        ejob *j = e->t_head;
        rx_job_status was = j->saved.status;
        int deleting = j->deleting;

        e->t_head = j->t_next;
        untouch(j, 0);
        j->deleting = 0;
        if (deleting) {
            engine_detach(e, j);
            continue;
        }
        if (rx_job_status_is_terminal(j->status) && j->active)
            engine_active_remove(e, j);
        /* Cancel removes results and output; the record stays until cleanup. */
        if (j->status == RX_JOB_CANCELED && was != RX_JOB_CANCELED)
            engine_queue_gone(e, j->id);
        if ((j->cancel_requested || j->stop_task >= 0) && j->running > 0)
            signal_runs(e, j);
        if (e->slurm != NULL && (j->cancel_requested || j->stop_task >= 0) && j->ext_alive)
            sched_wake(e); /* the Slurm executor scancels now, not at its next poll */
    }
    pthread_cond_broadcast(&e->changed);
}

void
engine_abort_touched(engine *e)
{
    store_rollback(e->st);
    untouch_all(e);
}

rx_err
engine_requeue(ejob *j, uint64_t idx)
{
    size_t pos = j->n_requeue;

    if (j->n_requeue == j->cap_requeue) {
        size_t cap = j->cap_requeue ? j->cap_requeue * 2 : 8;
        uint64_t *p = rx__realloc(j->requeue, cap * sizeof(*p));

        if (p == NULL)
            return RX_ENOMEM;
        j->requeue = p;
        j->cap_requeue = cap;
    }
    while (pos > 0 && j->requeue[pos - 1] > idx)
        pos--;
    memmove(j->requeue + pos + 1, j->requeue + pos, (j->n_requeue - pos) * sizeof(*j->requeue));
    j->requeue[pos] = idx;
    j->n_requeue++;
    return RX_OK;
}

int64_t
engine_next_task(const ejob *j)
{
    if (j->cancel_requested || j->cleanup_requested || j->stop_task >= 0 ||
        rx_job_status_is_terminal(j->status))
        return -1;
    if (j->n_requeue > 0)
        return (int64_t)j->requeue[0];
    if (j->next_task < j->n_tasks)
        return (int64_t)j->next_task;
    return -1;
}

void
engine_take_task(ejob *j, uint64_t idx)
{
    if (j->n_requeue > 0 && j->requeue[0] == idx) {
        j->n_requeue--;
        memmove(j->requeue, j->requeue + 1, j->n_requeue * sizeof(*j->requeue));
    } else if (idx == j->next_task) {
        j->next_task++;
    }
}

/* The message of a task the job stopped (or canceled) while it ran or before it started. */
static void
stop_message(const ejob *j, rx_task_state state, const char *detail, char *buf, size_t len)
{
    const char *what = state == RX_TASK_NOT_RUN ? "not run" : "stopped";

    if (j->cancel_requested)
        (void)snprintf(buf, len, "%s: the job was canceled%s%s%s", what, detail ? " (" : "",
                       detail ? detail : "", detail ? ")" : "");
    else if (j->stop_task >= 0)
        (void)snprintf(buf, len, "%s: the job stopped after task %" PRId64 " failed%s%s%s", what,
                       j->stop_task, detail ? " (" : "", detail ? detail : "", detail ? ")" : "");
    else
        (void)snprintf(buf, len, "%s: its supervisor was signaled%s%s%s", what, detail ? " (" : "",
                       detail ? detail : "", detail ? ")" : "");
}

rx_err
engine_task_ended(engine *e, ejob *j, uint64_t idx, const exec_shim *shim, double started_s,
                  const spool_exit *rec, rx_err rec_err)
{
    store_task_row row;
    char msg[4200];
    rx_err err;

    /* "Never told to start" from a supervisor this daemon told to start: the task wrote it (a
     * supervisor killed by its own task leaves the record to it). Believed, the task would run
     * again at once, endlessly, past any time limit. */
    int forged = rec_err == RX_OK && !rec->go && shim != NULL && shim->went;

    if (forged)
        rec_err = RX_EINVAL;
    if (rec_err == RX_OK && !rec->go) {
        /* Its supervisor was never told to start it: it did not run. Start it again later. */
        err = store_task_delete(e->st, j->id, idx);
        if (err != RX_OK)
            return err;
        j->running--;
        return engine_requeue(j, idx);
    }
    memset(&row, 0, sizeof(row));
    row.job_id = j->id;
    row.idx = idx;
    row.running = 0;
    row.shim_pid = shim ? shim->pid : 0;
    row.shim_start = shim ? shim->start_time : 0;
    row.started_s = started_s;
    row.ended_s = engine_now_s();
    row.exit_status = -1;
    if (rec_err == RX_OK) {
        row.task_state = rec->state;
        row.exit_status = rec->exit_status;
        row.signal = rec->signal;
        row.pgid = rec->task_pid;
        if (rec->started_s > 0)
            row.started_s = rec->started_s;
        if (rec->ended_s > 0)
            row.ended_s = rec->ended_s;
        row.error = rec->error;
        if (rec->state == RX_TASK_OK) {
            row.result_run = rec->result_run;
            row.result_off = rec->result_off;
            row.result_len = rec->result_len;
        }
        if (rec->state == RX_TASK_STOPPED || rec->state == RX_TASK_NOT_RUN) {
            stop_message(j, rec->state, rec->state == RX_TASK_STOPPED ? rec->error : NULL, msg,
                         sizeof(msg));
            row.error = msg;
        }
    } else {
        row.task_state = RX_TASK_LOST;
        if (forged)
            (void)snprintf(msg, sizeof(msg),
                           "lost: its exit record says it was never started, but its supervisor "
                           "was told to start it (the record is not the supervisor's)");
        else if (rec_err == RX_ENOENT)
            (void)snprintf(msg, sizeof(msg),
                           "lost: its supervisor vanished without an exit record");
        else
            (void)snprintf(msg, sizeof(msg), "lost: its exit record is unreadable (%s)",
                           rx_strerror(rec_err));
        row.error = msg;
        /* The task may still run, orphaned: nothing may run on unwatched. */
        exec_local_kill_orphan(shim, idx, e->system ? j->uid : geteuid());
    }
    if (row.task_state == RX_TASK_OK)
        row.error = NULL;
    err = store_task_put(e->st, &row);
    if (err != RX_OK)
        return err;
    j->running--;
    if (row.task_state == RX_TASK_OK) {
        j->ok++;
    } else {
        j->failed++;
        if (!j->continue_on_failure && j->stop_task < 0 && !j->cancel_requested)
            j->stop_task = (int64_t)idx;
    }
    return RX_OK;
}

/* Task idx of a run never started: its row goes, and it waits to be started again. */
static rx_err
task_put_back(engine *e, ejob *j, uint64_t idx)
{
    rx_err err = store_task_delete(e->st, j->id, idx);

    if (err != RX_OK)
        return err;
    j->running--;
    return engine_requeue(j, idx);
}

rx_err
engine_run_ended(engine *e, ejob *j, uint64_t first, uint64_t count, const exec_shim *shim,
                 double started_s, const spool_run_exit *rec, rx_err rec_err)
{
    size_t k = 0;
    rx_err err = RX_OK;
    exec_shim quiet;

    j->shims--;
    /* Tasks found lost kill the orphans of their supervisor (engine_task_ended): a run's
     * supervisor is one, so its session is scanned once, for the first, not once per task. */
    if (shim != NULL) {
        quiet = *shim;
        quiet.sid = 0;
    }
    if (rec_err == RX_OK && !rec->go) {
        spool_exit never;

        /* No task of the run ran (or the record is the task's, engine_task_ended says). */
        memset(&never, 0, sizeof(never));
        for (uint64_t i = first; i < first + count && err == RX_OK; i++)
            err = engine_task_ended(e, j, i, shim, started_s, &never, RX_OK);
        return err;
    }
    for (uint64_t i = first; i < first + count && err == RX_OK; i++) {
        if (rec_err != RX_OK) {
            /* Without a record nobody knows which of its tasks started: all are lost, none is
             * started twice. */
            err = engine_task_ended(e, j, i, i == first || shim == NULL ? shim : &quiet, started_s,
                                    NULL, rec_err);
        } else if (k < rec->n && rec->idx[k] == i) {
            err = engine_task_ended(e, j, i, shim, started_s, &rec->tasks[k], RX_OK);
            k++;
        } else if (i == first) {
            /* The first task of a run counts as started once the run went: a record without it
             * is not the supervisor's. */
            err = engine_task_ended(e, j, i, shim, started_s, NULL, RX_EINVAL);
        } else {
            err = task_put_back(e, j, i);
        }
    }
    return err;
}

uint64_t
engine_chunk_size(const engine *e, const ejob *j)
{
    uint64_t units = e->slots, per;

    if (e->output_bytes > 0 || e->slurm != NULL)
        return 1;
    if (j->task_chunk_size > 0)
        return j->task_chunk_size < ENGINE_CHUNK_MAX ? j->task_chunk_size : ENGINE_CHUNK_MAX;
    if (j->kind != RX_WORK_FUNCTION)
        return 1; /* commands run in chunks only when the job asks (shim.c run_command_chunk) */
    if (j->num_tasks > 0 && j->num_tasks < units)
        units = j->num_tasks;
    per = j->n_tasks / (units * 4);
    if (per < 1)
        per = 1;
    return per > ENGINE_CHUNK_AUTO_MAX ? ENGINE_CHUNK_AUTO_MAX : per;
}

rx_err
engine_prepare_spool(engine *e, ejob *j, char *why, size_t why_len)
{
    char dir[PATH_MAX], tmp[PATH_MAX];
    void *blob = NULL;
    size_t len = 0;
    store_work w;
    rx_err err;
    int fd;

    if (j->prepared)
        return RX_OK;
    memset(&w, 0, sizeof(w));
    if (spool_job_dir(e->state_dir, j->id, dir, sizeof(dir)) != 0) {
        (void)snprintf(why, why_len, "spool path is too long");
        return RX_EIO;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        (void)snprintf(why, why_len, "create '%s' failed: %s", dir, strerror(errno));
        return RX_EIO;
    }
    err = store_job_spec(e->st, j->id, &blob, &len);
    if (err != RX_OK) {
        (void)snprintf(why, why_len, "read the job's work failed: %s", store_errmsg(e->st));
        return err;
    }
    /* The local executor sends small work with each task (exec_local_assign): no file to
     * create, which on a file system slow at it (ext4 without a journal: 0.2-0.4 ms a file) is
     * a good part of a short job. Slurm's supervisors, on other hosts, and large work read it
     * from the spool. */
    if (e->slurm != NULL || len > SHIM_WORK_INLINE_MAX) {
        if (spool_write_atomic(dir, "work", blob, len, 0) != RX_OK) {
            (void)snprintf(why, why_len, "write '%s/work' failed: %s", dir, strerror(errno));
            err = RX_EIO;
            goto done;
        }
    }
    err = store_work_decode(blob, len, &w);
    if (err != RX_OK) {
        (void)snprintf(why, why_len, "the job's stored work is malformed");
        goto done;
    }
    if (w.stdin_data != NULL &&
        spool_write_atomic(dir, "stdin", w.stdin_data, w.stdin_len, 0) != RX_OK) {
        (void)snprintf(why, why_len, "write '%s/stdin' failed: %s", dir, strerror(errno));
        err = RX_EIO;
        goto done;
    }
    if (j->has_args) {
        fd = spool_tmp_open(dir, "args", tmp, sizeof(tmp));
        if (fd < 0) {
            (void)snprintf(why, why_len, "create '%s/args' failed: %s", dir, strerror(errno));
            err = RX_EIO;
            goto done;
        }
        err = store_job_args_write(e->st, j->id, fd);
        if (err != RX_OK) {
            (void)snprintf(why, why_len, "%s", store_errmsg(e->st));
            close(fd);
            (void)unlink(tmp);
            goto done;
        }
        if (spool_tmp_commit(fd, tmp, dir, "args", 0) != RX_OK) {
            (void)snprintf(why, why_len, "write '%s/args' failed: %s", dir, strerror(errno));
            err = RX_EIO;
            goto done;
        }
    }
    j->prepared = 1;
    if (e->slurm == NULL && len <= SHIM_WORK_INLINE_MAX) {
        rx__free(j->work);
        j->work = blob;
        j->work_len = len;
        blob = NULL;
    }
done:
    store_work_free(&w);
    rx__free(blob);
    return err;
}

/* ---------------------------------------------------------------------------------------------
 * The loop
 * ------------------------------------------------------------------------------------------- */

static rx_err
runs_reserve(engine *e, size_t more)
{
    size_t cap;
    erun *p;

    if (e->cap_runs - e->n_runs >= more)
        return RX_OK;
    cap = e->cap_runs ? e->cap_runs : 16;
    while (cap - e->n_runs < more)
        cap *= 2;
    p = rx__realloc(e->runs, cap * sizeof(*p));
    if (p == NULL)
        return RX_ENOMEM;
    e->runs = p;
    e->cap_runs = cap;
    return RX_OK;
}

/* A task that could not be started: recorded as START_FAILED at once. */
static rx_err
start_failed(engine *e, ejob *j, uint64_t idx, const char *msg)
{
    spool_exit rec;

    memset(&rec, 0, sizeof(rec));
    rec.go = 1;
    rec.state = RX_TASK_START_FAILED;
    rec.exit_status = -1;
    rec.started_s = engine_now_s();
    rec.ended_s = rec.started_s;
    rec.error = (char *)msg;
    engine_take_task(j, idx);
    j->running++; /* engine_task_ended counts it out again */
    return engine_task_ended(e, j, idx, NULL, rec.started_s, &rec, RX_OK);
}

/* The spawn request of task idx of j; dir and why are the caller's buffers. */
static void
shim_req_fill(engine *e, const ejob *j, uint64_t idx, char *dir, size_t dir_len, char *why,
              size_t why_len, exec_shim_req *req)
{
    (void)spool_job_dir(e->state_dir, j->id, dir, dir_len);
    req->shim_exe = e->shim_exe;
    req->shim_fd = e->shim_fd;
    req->job_dir = dir;
    req->idx = idx;
    req->n_tasks = j->n_tasks;
    req->timeout_ms = j->timeout_ms;
    req->grace_ms = e->grace_ms;
    req->has_args = j->has_args;
    req->output_bytes = e->output_bytes;
    req->result_bytes = e->result_bytes;
    req->uid = e->system ? j->uid : geteuid(); /* only in system mode as the job's user */
    req->count = 0;
    req->stop_on_failure = !j->continue_on_failure;
    req->work = j->work;
    req->work_len = j->work_len;
    req->why = why;
    req->why_len = why_len;
}

/* ---------------------------------------------------------------------------------------------
 * Spares: blank supervisors spawned ahead of their tasks
 *
 * Spawning a supervisor (vfork, exec, its start) costs 0.5-1.5 ms, and done when a task is to
 * start it lies on that task's path: between a submission and its start, and between one task's
 * end and the next one's start in a slot. So the scheduler keeps blank supervisors ready
 * (`rxjob-shim --blank`, at most `slots` and SCHED_SPARES_MAX), spawned once the turn's tasks
 * got "go", whether or not any job waits; a task to start takes one and gives it its task and
 * the claim in one message (exec_local_assign: the arguments a supervisor spawned for the task
 * would have got, then "c"). From then on it is that task's supervisor like any other: it reads
 * the task's work and argument while the daemon commits the start, then waits for "go".
 *
 * A blank spare is not in the store and is not counted anywhere. One that reads end-of-file
 * before its assignment (the daemon died, or discarded it) exits without writing anything, as
 * one that is assigned but never claimed would: a daemon that dies leaves no trace of its
 * spares, so nothing changes for recovery. The scheduler watches their pidfds: one that dies
 * waiting (killed by its user, say) is reaped at once, and the next is spawned SPARE_RESPAWN_MS
 * later; one found dead when taken is reaped and another taken or spawned. Not in system mode (a
 * task's supervisor is forked as the job's user), nor under --hold, nor with the Slurm executor.
 * ------------------------------------------------------------------------------------------- */

static void
spare_drop(engine *e, size_t i)
{
    exec_local_discard(&e->spares[i].shim);
    e->spares[i] = e->spares[--e->n_spares];
}

void
sched_spares_discard(engine *e)
{
    while (e->n_spares > 0)
        spare_drop(e, e->n_spares - 1);
}

/* 1 if the spare has exited (its pidfd is readable); 0 if not, or without a pidfd. */
static int
spare_exited(const espare *sp)
{
    struct pollfd pfd = {.fd = sp->shim.pidfd, .events = POLLIN, .revents = 0};

    return pfd.fd >= 0 && poll(&pfd, 1, 0) != 0;
}

/* Reap the spares that died waiting (their pidfds readable), and spawn none for
 * SPARE_RESPAWN_MS. Caller (the scheduler thread) holds mu. */
static void
spares_reap_dead(engine *e)
{
    for (size_t i = e->n_spares; i-- > 0;) {
        if (!spare_exited(&e->spares[i]))
            continue;
        rx__log(RX_LOG_WARN,
                "engine: spare supervisor %ld exited before it was given a task: reaped; the next "
                "spawned in %d ms",
                (long)e->spares[i].shim.pid, SPARE_RESPAWN_MS);
        spare_drop(e, i);
        e->spares_after_ms = rx__now_ms() + SPARE_RESPAWN_MS;
    }
}

/* A spare given the task of req and claimed, into *out: 1; or 0 (none left alive). */
static int
spare_take(engine *e, const exec_shim_req *req, exec_shim *out)
{
    while (e->n_spares > 0) {
        espare *sp = &e->spares[e->n_spares - 1];

        /* Gone already (killed)? Then try the next, or spawn: it would read as LOST. */
        if (sp->shim.pidfd < 0 || spare_exited(sp) || exec_local_assign(&sp->shim, req) != 0) {
            spare_drop(e, e->n_spares - 1);
            continue;
        }
        *out = sp->shim;
        e->n_spares--;
        return 1;
    }
    return 0;
}

/* Spawn the spares missing. Caller (the scheduler thread) holds mu, which is let go while the
 * spares are spawned (a vfork and an exec each, 0.1-0.4 ms): a submission that starts its job
 * at once (sched_start_new) or a query does not wait for them. Only this thread adds spares;
 * others may take some meanwhile, so they are added after, up to the number wanted. */
static void
spares_fill(engine *e)
{
    size_t want = e->slots < SCHED_SPARES_MAX ? e->slots : SCHED_SPARES_MAX, n_new = 0;
    exec_shim fresh[SCHED_SPARES_MAX];

    if (e->hold || e->stopping || e->system || e->slurm != NULL || e->n_spares >= want ||
        rx__now_ms() < e->spares_after_ms)
        return;
    want -= e->n_spares;
    pthread_mutex_unlock(&e->mu);
    while (n_new < want) {
        int spawn_errno = 0;

        memset(&fresh[n_new], 0, sizeof(fresh[n_new]));
        fresh[n_new].pidfd = -1;
        fresh[n_new].go_fd = -1;
        if (exec_local_spawn_blank(e->shim_exe, e->shim_fd, &fresh[n_new], &spawn_errno) != RX_OK)
            break; /* start_task spawns one for its task, and says why if that fails too */
        n_new++;
    }
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < n_new; i++) {
        if (e->n_spares < SCHED_SPARES_MAX && !e->stopping)
            e->spares[e->n_spares++].shim = fresh[i];
        else
            exec_local_discard(&fresh[i]);
    }
}

/* How many tasks the run starting at idx takes: a chunk (engine_chunk_size) from next_task, or
 * one (no chunks, tasks put back). */
static uint64_t
run_length(const engine *e, const ejob *j, uint64_t idx)
{
    uint64_t chunk = engine_chunk_size(e, j);

    if (chunk <= 1 || idx != j->next_task || (j->n_requeue > 0 && j->requeue[0] == idx))
        return 1;
    return j->n_tasks - idx < chunk ? j->n_tasks - idx : chunk;
}

/* Start the run of tasks [idx, idx + count) under one supervisor, which waits for "go" until
 * the transaction commits. */
static rx_err
start_task(engine *e, ejob *j, uint64_t idx, uint64_t count)
{
    char dir[PATH_MAX], why[512];
    exec_shim_req req;
    store_task_row row;
    erun *r;
    int spawn_errno = 0;
    rx_err err;

    err = engine_prepare_spool(e, j, why, sizeof(why));
    if (err == RX_ENOMEM || err == RX_ESTORE)
        return err;
    if (err != RX_OK) {
        char msg[600];

        (void)snprintf(msg, sizeof(msg), "cannot start: %s", why);
        return start_failed(e, j, idx, msg);
    }
    err = runs_reserve(e, 1);
    if (err != RX_OK)
        return err;
    shim_req_fill(e, j, idx, dir, sizeof(dir), why, sizeof(why), &req);
    req.count = count > 1 ? count : 0;
    r = &e->runs[e->n_runs];
    memset(r, 0, sizeof(r[0]));
    r->shim.pidfd = -1;
    r->shim.go_fd = -1;
    if (spare_take(e, &req, &r->shim)) { /* a blank spare takes a chunk as well */
        /* claimed already */
    } else if (exec_local_spawn(&req, &r->shim, &spawn_errno) != RX_OK) {
        char msg[PATH_MAX + 128];

        /* Out of processes or memory for now: the task waits, it has not failed. */
        if (spawn_errno == EAGAIN || spawn_errno == ENOMEM) {
            rx__log(RX_LOG_DEBUG, "engine: cannot start a supervisor now (%s), retrying",
                    strerror(spawn_errno));
            e->start_later = 1;
            return RX_OK;
        }

        if (why[0] != '\0')
            (void)snprintf(msg, sizeof(msg), "cannot start: %s", why);
        else
            (void)snprintf(msg, sizeof(msg), "cannot start its supervisor '%s': %s", e->shim_exe,
                           strerror(spawn_errno));
        return start_failed(e, j, idx, msg);
    } else if (exec_local_assign(&r->shim, &req) != 0) {
        /* Dead at once, or the message did not go whole: nothing is written for it yet, so it
         * is got rid of and the task waits for the next turn, instead of running with a
         * supervisor that never got its task (LOST, or a shim waiting for the rest for ever). */
        rx__log(RX_LOG_WARN, "engine: giving supervisor %ld its task failed (%s); retrying",
                (long)r->shim.pid, strerror(errno));
        exec_local_discard(&r->shim);
        e->start_later = 1;
        return RX_OK;
    }
    r->job = j;
    r->idx = idx;
    r->count = count;
    r->started_s = engine_now_s();
    memset(&row, 0, sizeof(row));
    row.job_id = j->id;
    row.running = 1;
    row.shim_pid = r->shim.pid;
    row.shim_start = r->shim.start_time;
    row.started_s = r->started_s;
    row.exit_status = -1;
    e->n_runs++; /* before the write, so a failure abandons this supervisor too */
    /* One row for the run: it stands for its count tasks until each task's end writes its own
     * (schema.c v3). */
    row.idx = idx;
    row.run_count = count;
    err = store_task_put(e->st, &row);
    if (err != RX_OK)
        return err;
    for (uint64_t i = idx; i < idx + count; i++) {
        engine_take_task(j, i);
        j->running++;
    }
    j->shims++;
    return RX_OK;
}

static int
has_work(engine *e)
{
    if (e->d_head != NULL && rx__now_ms() >= e->d_due_ms)
        return 1;
    if (!e->hold && e->n_runs < e->slots) {
        for (ejob *j = e->a_head; j != NULL; j = j->a_next) {
            unsigned cap = j->num_tasks ? j->num_tasks : e->slots;

            if (j->shims < cap && engine_next_task(j) >= 0)
                return 1;
        }
    }
    for (size_t i = 0; i < e->n_runs; i++)
        if (e->runs[i].exited)
            return 1;
    return 0;
}

/* Give up the supervisors started in a transaction that did not commit: they get end-of-file
 * instead of "go", write a go-0 record and exit; the record is removed so it cannot be
 * mistaken for the next attempt's. */
void
sched_fresh_abandon(engine *e, size_t first_fresh)
{
    for (size_t i = first_fresh; i < e->n_runs; i++) {
        erun *r = &e->runs[i];
        char dir[PATH_MAX], path[PATH_MAX];

        exec_local_abandon(&r->shim);
        exec_local_wait_abandoned(&r->shim);
        /* A run's record is its first task's file. */
        if (r->job != NULL && spool_job_dir(e->state_dir, r->job->id, dir, sizeof(dir)) == 0 &&
            spool_task_path(dir, r->idx, ".exit", path, sizeof(path)) == 0)
            (void)unlink(path);
    }
    e->n_runs = first_fresh;
}

/* Start the tasks job j may start now, in the open transaction, while slots are free:
 * *running_now counts the supervisors against `slots`. Caller holds mu. */
static rx_err
start_job(engine *e, ejob *j, uint64_t *running_now)
{
    unsigned cap = j->num_tasks ? j->num_tasks : e->slots;

    while (*running_now < e->slots && j->shims < cap) {
        int64_t idx = engine_next_task(j);
        size_t before = e->n_runs;
        rx_err err;

        if (idx < 0 || e->start_later)
            break;
        err = engine_touch(e, j);
        if (err == RX_OK)
            err = start_task(e, j, (uint64_t)idx, run_length(e, j, (uint64_t)idx));
        if (err != RX_OK)
            return err;
        *running_now += e->n_runs - before;
    }
    return RX_OK;
}

/* Supervisors that count against `slots`: the runs whose end is not yet seen. */
static uint64_t
runs_running(const engine *e)
{
    uint64_t n = 0;

    for (size_t i = 0; i < e->n_runs; i++)
        n += !e->runs[i].exited;
    return n;
}

void
sched_fresh_go(engine *e, size_t first_fresh)
{
    for (size_t i = first_fresh; i < e->n_runs; i++) {
        exec_local_go(&e->runs[i].shim);
        e->tasks_started_total += e->runs[i].count;
    }
}

int
sched_can_start_new(const engine *e)
{
    if (e->hold || e->stopping || e->system || e->slurm != NULL || e->start_later ||
        e->n_spares == 0 || runs_running(e) >= e->slots)
        return 0;
    for (const ejob *j = e->a_head; j != NULL; j = j->a_next) {
        unsigned cap = j->num_tasks ? j->num_tasks : e->slots;

        if (j->shims < cap && engine_next_task(j) >= 0)
            return 0; /* an older job waits for a slot: the scheduler's turn comes first */
    }
    return 1;
}

rx_err
sched_start_new(engine *e, ejob *const *jobs, size_t n)
{
    uint64_t running_now = runs_running(e);
    size_t first_fresh = e->n_runs;
    rx_err err = store_savepoint(e->st);

    for (size_t i = 0; err == RX_OK && i < n && running_now < e->slots && !e->start_later; i++)
        err = start_job(e, jobs[i], &running_now);
    if (err == RX_OK) {
        store_savepoint_release(e->st);
        return RX_OK;
    }
    rx__log(RX_LOG_WARN, "engine: starting new jobs at once failed (%s): the scheduler will",
            rx_strerror(err));
    store_savepoint_rollback(e->st);
    untouch_all(e);
    sched_fresh_abandon(e, first_fresh);
    return err;
}

/* The end of a shim's task is durable in the store: if it said "e" and waits, "k" (it exits
 * without syncing its record) and reap it when it exits (sched_main polls the reap list). */
static void
ended_committed(engine *e, exec_shim *sh)
{
    exec_local_ack(sh);
    if (sh->pidfd < 0) {
        /* Released already (its pidfd was readable, or it exited without one), or without a
         * pidfd and waiting: it exits at once after "k". */
        if (sh->pid > 0)
            exec_local_wait_abandoned(sh);
        return;
    }
    if (e->n_reaps == e->cap_reaps) {
        size_t cap = e->cap_reaps ? e->cap_reaps * 2 : 8;
        exec_shim *p = rx__realloc(e->reaps, cap * sizeof(*p));

        if (p == NULL) {
            exec_local_wait_abandoned(sh); /* it exits at once after "k" */
            return;
        }
        e->reaps = p;
        e->cap_reaps = cap;
    }
    sh->acked_ms = rx__now_ms();
    e->reaps[e->n_reaps++] = *sh;
    sh->pidfd = -1;
    sh->pid = 0;
}

void
sched_reaps_finish(engine *e)
{
    for (size_t i = 0; i < e->n_reaps; i++)
        exec_local_wait_abandoned(&e->reaps[i]);
    e->n_reaps = 0;
    rx__free(e->reaps);
    e->reaps = NULL;
    e->cap_reaps = 0;
}

/* One transaction: record ended tasks, start new ones. Caller holds mu. */
static rx_err
sched_step(engine *e)
{
    size_t first_fresh = e->n_runs, n_exited = 0, k;
    uint64_t running_now;
    rx_err err;

    e->start_later = 0;
    if (!has_work(e))
        return RX_OK;
    err = store_begin(e->st);
    if (err != RX_OK) {
        rx__log(RX_LOG_ERROR, "%s", store_errmsg(e->st));
        return err;
    }
    err = engine_deletes_write(e);
    if (err != RX_OK)
        goto fail;
    for (size_t i = 0; i < first_fresh; i++) {
        erun *r = &e->runs[i];

        if (!r->exited)
            continue;
        n_exited++;
        err = engine_touch(e, r->job);
        if (err == RX_OK)
            err = engine_run_ended(e, r->job, r->idx, r->count, &r->shim, r->started_s, &r->rec,
                                   r->have_rec ? r->rec_err : RX_ENOENT);
        if (err != RX_OK)
            goto fail;
    }
    running_now = first_fresh - n_exited;
    for (ejob *j = e->a_head; !e->hold && !e->start_later && j != NULL && running_now < e->slots;
         j = j->a_next) {
        err = start_job(e, j, &running_now);
        if (err != RX_OK)
            goto fail;
    }
    err = engine_commit_touched(e);
    if (err != RX_OK) {
        sched_fresh_abandon(e, first_fresh);
        return err;
    }
    /* Durable now: let the new tasks run, forget the ended ones and the deleted jobs. */
    sched_fresh_go(e, first_fresh);
    engine_deletes_done(e);
    k = 0;
    for (size_t i = 0; i < e->n_runs; i++) {
        if (e->runs[i].exited) {
            ended_committed(e, &e->runs[i].shim);
            spool_run_exit_free(&e->runs[i].rec);
            continue;
        }
        e->runs[k++] = e->runs[i];
    }
    e->n_runs = k;
    engine_after_commit(e);
    return RX_OK;

fail:
    rx__log(RX_LOG_ERROR, "engine: scheduling failed: %s", rx_strerror(err));
    store_rollback(e->st);
    untouch_all(e);
    sched_fresh_abandon(e, first_fresh);
    return err;
}

void
sched_wake(engine *e)
{
    uint64_t one = 1;

    if (write(e->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        rx__log(RX_LOG_WARN, "engine: wake the scheduler failed: %s", strerror(errno));
}

/* What a poll entry of sched_main watches: owner[k] = index * WATCH_KINDS + one of these (a
 * spare's index is not used: others take spares while the scheduler polls). */
enum { WATCH_PIDFD = 0, WATCH_GO_FD = 1, WATCH_REAP = 2, WATCH_SPARE = 3, WATCH_KINDS = 4 };

/* Add fd to sched_main's poll set, its owner tag index * WATCH_KINDS + what. */
static void
watch(struct pollfd *pfds, size_t *owner, size_t *n, int fd, size_t index, int what)
{
    pfds[*n].fd = fd;
    pfds[*n].events = POLLIN;
    pfds[*n].revents = 0;
    owner[(*n)++] = index * WATCH_KINDS + (size_t)what;
}

/* Lower *timeout (ms, -1 = none) to left ms when that is sooner. */
static void
timeout_at_most(int *timeout, int64_t left)
{
    if (left < 0)
        left = 0;
    if (*timeout < 0 || left < *timeout)
        *timeout = (int)left;
}

/* Note which supervisors ended (said "e", or exited) and read their exit records; reap the ones
 * told "k" that exited. Caller holds mu. */
static void
collect_exits(engine *e, const struct pollfd *pfds, const size_t *owner, size_t n)
{
    size_t n_reaped = 0;
    int spare_died = 0;

    for (size_t k = 1; k < n; k++) {
        erun *r;
        char dir[PATH_MAX];
        size_t i = owner[k] / WATCH_KINDS;
        int what = (int)(owner[k] % WATCH_KINDS);

        if (pfds[k].revents == 0)
            continue;
        if (what == WATCH_SPARE) {
            spare_died = 1;
            continue;
        }
        if (what == WATCH_REAP) {
            exec_local_release(&e->reaps[i]);
            n_reaped++;
            continue;
        }
        r = &e->runs[i];
        if (what == WATCH_GO_FD) {
            /* The end message: the shim sent its record and waits for "k"; anything else
             * closes go_fd, and the pidfd tells the rest (with the record file, if any). */
            if (r->exited ||
                exec_local_read_end(&r->shim, r->idx, r->count, &r->rec, &r->rec_err) != 1)
                continue;
            r->exited = 1;
            r->have_rec = 1;
            continue;
        } else {
            exec_local_release(&r->shim);
            if (r->exited)
                continue; /* said "e" before: its record is read */
        }
        r->exited = 1;
        r->have_rec = 1;
        if (spool_job_dir(e->state_dir, r->job->id, dir, sizeof(dir)) != 0)
            r->rec_err = RX_EIO;
        else
            r->rec_err = spool_run_exit_read(dir, r->idx, r->count, &r->rec);
    }
    if (spare_died)
        spares_reap_dead(e);
    if (n_reaped > 0) {
        size_t k = 0;

        for (size_t i = 0; i < e->n_reaps; i++)
            if (e->reaps[i].pidfd >= 0)
                e->reaps[k++] = e->reaps[i];
        e->n_reaps = k;
    }
    /* Without a pidfd (old kernels, or none could be opened) the pid is checked instead. */
    for (size_t i = 0; i < e->n_runs; i++) {
        erun *r = &e->runs[i];
        uint64_t start;
        char dir[PATH_MAX];

        if (r->exited || r->shim.pidfd >= 0)
            continue;
        if (exec_local_proc_start(r->shim.pid, &start) == 0 && start == r->shim.start_time) {
            int status;

            if (waitpid(r->shim.pid, &status, WNOHANG) != r->shim.pid)
                continue;
        }
        r->shim.pid = 0;
        r->exited = 1;
        r->have_rec = 1;
        if (spool_job_dir(e->state_dir, r->job->id, dir, sizeof(dir)) != 0)
            r->rec_err = RX_EIO;
        else
            r->rec_err = spool_run_exit_read(dir, r->idx, r->count, &r->rec);
    }
}

void *
sched_main(void *arg)
{
    engine *e = arg;
    struct pollfd *pfds = NULL;
    size_t *owner = NULL;
    size_t cap = 0;

    pthread_mutex_lock(&e->mu);
    for (;;) {
        size_t n = 0;
        int timeout = -1;
        uint64_t drained;

        if (e->stopping)
            break;
        if (sched_step(e) != RX_OK || e->start_later)
            timeout = RETRY_AFTER_FAILURE_MS;
        else
            spares_fill(e);
        if (cap < 2 * e->n_runs + e->n_reaps + SCHED_SPARES_MAX + 1) {
            size_t ncap = (2 * e->n_runs + e->n_reaps + SCHED_SPARES_MAX + 1) * 2;
            struct pollfd *p = rx__realloc(pfds, ncap * sizeof(*p));
            size_t *o = p ? rx__realloc(owner, ncap * sizeof(*o)) : NULL;

            if (p != NULL)
                pfds = p;
            if (o != NULL) {
                owner = o;
                cap = ncap;
            }
        }
        if (cap > 0) {
            pfds[n].fd = e->wake_fd;
            pfds[n].events = POLLIN;
            pfds[n++].revents = 0;
        }
        for (size_t i = 0; i < e->n_runs; i++) {
            erun *r = &e->runs[i];

            if (r->exited)
                continue;
            if (r->shim.pidfd < 0 || n >= cap) {
                timeout = POLL_NO_PIDFD_MS;
            } else {
                watch(pfds, owner, &n, r->shim.pidfd, i, WATCH_PIDFD);
            }
            if (r->shim.go_fd >= 0 && n < cap)
                watch(pfds, owner, &n, r->shim.go_fd, i, WATCH_GO_FD);
        }
        for (size_t i = 0; i < e->n_reaps && n < cap; i++) {
            exec_shim *rp = &e->reaps[i];

            if (rp->acked_ms > 0) {
                int64_t left = rp->acked_ms + REAP_KILL_MS - rx__now_ms();

                if (left <= 0) {
                    /* Its task's end is durable: nothing of it is lost. */
                    rx__log(RX_LOG_WARN,
                            "engine: supervisor %ld still there %d s after its task's end was "
                            "recorded: killed",
                            (long)rp->pid, REAP_KILL_MS / 1000);
                    (void)exec_local_signal(rp, SIGKILL);
                    rp->acked_ms = 0;
                } else {
                    timeout_at_most(&timeout, left);
                }
            }
            watch(pfds, owner, &n, rp->pidfd, i, WATCH_REAP);
        }
        for (size_t i = 0; i < e->n_spares && n < cap; i++)
            if (e->spares[i].shim.pidfd >= 0) /* (without one: found when taken) */
                watch(pfds, owner, &n, e->spares[i].shim.pidfd, i, WATCH_SPARE);
        if (e->n_spares < SCHED_SPARES_MAX && e->spares_after_ms > rx__now_ms())
            timeout_at_most(&timeout, e->spares_after_ms - rx__now_ms());
        if (e->d_head != NULL)
            timeout_at_most(&timeout, e->d_due_ms - rx__now_ms());
        pthread_mutex_unlock(&e->mu);

        if (poll(pfds, (nfds_t)n, n == 0 ? RETRY_AFTER_FAILURE_MS : timeout) < 0 && errno != EINTR)
            rx__log(RX_LOG_WARN, "engine: poll failed: %s", strerror(errno));
        if (n > 0 && pfds[0].revents != 0 && read(e->wake_fd, &drained, sizeof(drained)) < 0)
            drained = 0;

        pthread_mutex_lock(&e->mu);
        if (n > 0)
            collect_exits(e, pfds, owner, n);
    }
    sched_spares_discard(e);
    pthread_mutex_unlock(&e->mu);
    rx__free(pfds);
    rx__free(owner);
    return NULL;
}
