/*
 * exec_slurm.c - the Slurm executor (see exec_slurm.h and docs/slurm.md).
 *
 * One thread runs rounds. A round:
 *
 *   1. under the engine mutex: look at the active jobs; a job not yet submitted gets its spool
 *      written (work, args, stdin) and is marked for submission; note which are being canceled
 *      or stopped;
 *   2. without the mutex (Slurm's commands may take a while): submit new jobs as held arrays,
 *      write each array's id into the spool durably, then release it; scancel the arrays of
 *      jobs being canceled (pending tasks first, then the rest); one squeue for every array still
 *      of interest; read the exit records of tasks that are not pending; decide, per task, that
 *      it started, that it ended (how), or nothing yet;
 *   3. under the mutex, in one transaction: record those starts and ends exactly as the local
 *      scheduler does (engine_task_ended), and whether each array may still have live tasks
 *      (ejob.ext_alive: a job being canceled or stopped stays RUNNING until Slurm says none is
 *      left); commit; wake waiters.
 *
 * Then it sleeps for the poll interval, or until woken (a submission, a cancel, shutdown).
 *
 * Durability: an array is submitted held (`sbatch --hold`) and released only once its id is on
 * disk (`spool/<id>/slurm`), so a task never runs unless the daemon can find its array again;
 * a crash between sbatch and that write is resolved through a marker file (`slurm.submit`) and
 * the array's name and comment in squeue: found -> adopted, not found -> it never ran and is
 * submitted again. The exit record, written by the supervisor on the node, is what a task's
 * end is taken from; Slurm's state says when a task started, and why a task ended that left no
 * record (or one that says it was stopped when rxjobd did not stop it).
 */
#define _GNU_SOURCE
#include "server/exec_slurm.h"

#include "core/internal.h"
#include "server/sched.h"
#include "server/slurm.h"
#include "store/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLURM_DEFAULT_POLL_MS 1000
#define SLURM_CMD_TIMEOUT_MS  60000 /* a Slurm command that takes longer is killed */
#define SLURM_RECORD_GRACE_MS 5000  /* over in Slurm, no exit record yet: wait this long */
#define SLURM_CANCEL_AGAIN_MS 5000  /* scancel again while tasks of a canceled job remain */
#define SLURM_IDS_PER_SQUEUE  200   /* job ids per squeue call */
#define SLURM_ID_FILE         "slurm"
#define SLURM_MARKER_FILE     "slurm.submit"

enum { TS_NONE = 0, TS_RUNNING, TS_ENDED };                              /* as the store has it */
enum { SQ_ABSENT = 0, SQ_QUEUED, SQ_RUNNING, SQ_DONE_OK, SQ_DONE_FAIL }; /* as squeue says */

/* Why Slurm ended tasks badly: a state and a reason, interned (few differ within a job). */
typedef struct sfail {
    char *state;
    char *reason;
} sfail;

/* What Slurm (squeue, or sacct) said of a job's tasks this round. */
typedef struct sview {
    uint8_t *code; /* per task: SQ_* */
    uint16_t *why; /* per task: 0, or 1 + an index into whys; allocated at the first failure */
    sfail *whys;
    size_t n_whys, cap_whys;
} sview;

typedef struct sevent {
    uint64_t idx;
    int start; /* 1: it started (a running row); 0: it ended as rec says */
    spool_exit rec;
} sevent;

/* A job this executor follows: owned by its thread, never touched by another. */
typedef struct sjob {
    int64_t id;
    uint64_t n_tasks;
    int64_t slurm_id; /* 0: not submitted */
    int loaded;       /* st and slurm_id read from the store and the spool */
    int found_marker; /* a submission was begun before a crash: look the array up by name */
    int need_release;
    int alive;         /* Slurm may have pending or running tasks of it */
    uint8_t *st;       /* per task: TS_* */
    int64_t *wait_ms;  /* per task: since when it is over in Slurm with no exit record; 0 */
    int64_t cancel_ms; /* when scancel was last run; 0 = never */
    int present;       /* seen on the active list this round */

    /* This round: from the job (under the mutex) ... */
    int stop; /* canceled, or stopped after a failure */
    int submit;
    int64_t timeout_ms;
    unsigned num_tasks;
    int has_args;
    char *start_err; /* its tasks cannot be started: why (they fail START_FAILED) */
    /* ... from Slurm ... */
    int seen; /* squeue answered about it */
    sview sq;
    int acct_tried; /* sacct was asked (acct holds its answer if it gave one) */
    sview acct;
    /* ... and what to record. */
    sevent *ev;
    size_t n_ev, cap_ev;

    struct sjob *next;
} sjob;

struct exec_slurm {
    int64_t poll_ms;
    int acct_off; /* sacct said accounting is disabled: do not ask again */
    sjob *jobs;
    int64_t *orphans; /* arrays to scancel whose job is gone or over */
    size_t n_orphans, cap_orphans;
};

/* ---------------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------------- */

static void
view_reset(sview *v, uint64_t n_tasks)
{
    for (size_t i = 0; i < v->n_whys; i++) {
        rx__free(v->whys[i].state);
        rx__free(v->whys[i].reason);
    }
    v->n_whys = 0;
    if (v->code != NULL)
        memset(v->code, SQ_ABSENT, (size_t)n_tasks);
    if (v->why != NULL)
        memset(v->why, 0, (size_t)n_tasks * sizeof(*v->why));
}

static void
view_free(sview *v)
{
    view_reset(v, 0);
    rx__free(v->code);
    rx__free(v->why);
    rx__free(v->whys);
    memset(v, 0, sizeof(*v));
}

/* The index + 1 of (state, reason) in v->whys, added if new; 0 when out of memory or room. */
static uint16_t
view_intern(sview *v, uint64_t n_tasks, const char *state, const char *reason)
{
    size_t n = strcspn(state, " ");

    for (size_t i = 0; i < v->n_whys; i++)
        if (strlen(v->whys[i].state) == n && strncmp(v->whys[i].state, state, n) == 0 &&
            strcmp(v->whys[i].reason, reason) == 0)
            return (uint16_t)(i + 1);
    if (v->n_whys >= UINT16_MAX)
        return 0;
    if (v->why == NULL) {
        v->why = rx__calloc((size_t)n_tasks, sizeof(*v->why));
        if (v->why == NULL)
            return 0;
    }
    if (v->n_whys == v->cap_whys) {
        size_t cap = v->cap_whys ? v->cap_whys * 2 : 4;
        sfail *p = rx__realloc(v->whys, cap * sizeof(*p));

        if (p == NULL)
            return 0;
        v->whys = p;
        v->cap_whys = cap;
    }
    v->whys[v->n_whys].state = rx__memdup(state, n);
    v->whys[v->n_whys].reason = rx__strdup(reason);
    if (v->whys[v->n_whys].state == NULL || v->whys[v->n_whys].reason == NULL) {
        rx__free(v->whys[v->n_whys].state);
        rx__free(v->whys[v->n_whys].reason);
        return 0;
    }
    v->n_whys++;
    return (uint16_t)v->n_whys;
}

static const sfail *
view_why(const sview *v, uint64_t idx)
{
    if (v->why == NULL || v->why[idx] == 0)
        return NULL;
    return &v->whys[v->why[idx] - 1];
}

typedef struct mark_ctx {
    sview *v;
    uint8_t code;
    uint16_t why;
} mark_ctx;

static void
mark_range(uint64_t first, uint64_t last, void *user)
{
    mark_ctx *m = user;

    for (uint64_t i = first; i <= last; i++) {
        m->v->code[i] = m->code;
        if (m->v->why != NULL)
            m->v->why[i] = m->why;
    }
}

static uint8_t
phase_code(const char *state)
{
    switch (slurm_state_phase(state)) {
    case SLURM_QUEUED:
        return SQ_QUEUED;
    case SLURM_RUNNING:
        return SQ_RUNNING;
    case SLURM_DONE_OK:
        return SQ_DONE_OK;
    case SLURM_DONE_FAIL:
        return SQ_DONE_FAIL;
    }
    return SQ_RUNNING;
}

/* Mark the tasks of a line ("4-499%4") with its state. 0, or -1 if the list is malformed. */
static int
view_mark(sview *v, uint64_t n_tasks, const char *tasks, const char *state, const char *reason)
{
    mark_ctx m = {.v = v, .code = phase_code(state), .why = 0};

    if (m.code == SQ_DONE_FAIL)
        m.why = view_intern(v, n_tasks, state, reason);
    return slurm_task_ranges(tasks, n_tasks, mark_range, &m);
}

static void
events_clear(sjob *sj)
{
    for (size_t i = 0; i < sj->n_ev; i++)
        spool_exit_free(&sj->ev[i].rec);
    sj->n_ev = 0;
}

static void
sjob_free(sjob *sj)
{
    if (sj == NULL)
        return;
    events_clear(sj);
    view_free(&sj->sq);
    view_free(&sj->acct);
    rx__free(sj->ev);
    rx__free(sj->st);
    rx__free(sj->wait_ms);
    rx__free(sj->start_err);
    rx__free(sj);
}

static int
orphan_add(exec_slurm *x, int64_t slurm_id)
{
    if (x->n_orphans == x->cap_orphans) {
        size_t cap = x->cap_orphans ? x->cap_orphans * 2 : 8;
        int64_t *p = rx__realloc(x->orphans, cap * sizeof(*p));

        if (p == NULL)
            return -1;
        x->orphans = p;
        x->cap_orphans = cap;
    }
    x->orphans[x->n_orphans++] = slurm_id;
    return 0;
}

static sevent *
event_add(sjob *sj, uint64_t idx, int start)
{
    sevent *ev;

    if (sj->n_ev == sj->cap_ev) {
        size_t cap = sj->cap_ev ? sj->cap_ev * 2 : 16;
        sevent *p = rx__realloc(sj->ev, cap * sizeof(*p));

        if (p == NULL)
            return NULL;
        sj->ev = p;
        sj->cap_ev = cap;
    }
    ev = &sj->ev[sj->n_ev++];
    memset(ev, 0, sizeof(*ev));
    ev->idx = idx;
    ev->start = start;
    return ev;
}

/* An end event with a record made here (the task left none, or Slurm's word replaces it). */
static int
event_end_synth(sjob *sj, uint64_t idx, rx_task_state state, const char *error,
                const spool_exit *from)
{
    sevent *ev = event_add(sj, idx, 0);

    if (ev == NULL)
        return -1;
    ev->rec.go = 1;
    ev->rec.state = state;
    ev->rec.exit_status = from ? from->exit_status : -1;
    ev->rec.signal = from ? from->signal : 0;
    ev->rec.task_pid = from ? from->task_pid : 0;
    ev->rec.started_s = from ? from->started_s : 0;
    ev->rec.ended_s = from ? from->ended_s : 0;
    ev->rec.error = rx__strdup(error);
    if (ev->rec.error == NULL) {
        sj->n_ev--;
        return -1;
    }
    return 0;
}

static int
job_dir(const engine *e, int64_t id, char *buf, size_t len)
{
    return spool_job_dir(e->state_dir, id, buf, len);
}

static void
log_cmd_failure(const char *what, const slurm_run *r)
{
    char why[512];

    slurm_run_why(r, why, sizeof(why));
    rx__log(RX_LOG_WARN, "slurm: %s failed: %s", what, why);
}

/* ---------------------------------------------------------------------------------------------
 * Round, step 1: under the mutex
 * ------------------------------------------------------------------------------------------- */

static rx_err
load_row(const store_task_row *row, void *user)
{
    sjob *sj = user;

    if (row->idx < sj->n_tasks)
        sj->st[row->idx] = row->running ? TS_RUNNING : TS_ENDED;
    return RX_OK;
}

static int
read_slurm_id(const char *dir, int64_t *out_id)
{
    char path[PATH_MAX];
    void *data = NULL;
    size_t len = 0;
    int rc = -1;

    if (snprintf(path, sizeof(path), "%s/%s", dir, SLURM_ID_FILE) >= (int)sizeof(path))
        return -1;
    if (spool_read_file(path, 64, &data, &len) != RX_OK)
        return -1;
    ((char *)data)[strcspn(data, "\n")] = '\0';
    if (rx__parse_i64(data, 1, INT64_MAX, out_id) == RX_OK)
        rc = 0;
    rx__free(data);
    return rc;
}

static int
has_marker(const char *dir)
{
    char path[PATH_MAX];

    if (snprintf(path, sizeof(path), "%s/%s", dir, SLURM_MARKER_FILE) >= (int)sizeof(path))
        return 0;
    return access(path, F_OK) == 0;
}

static sjob *
sjob_new(engine *e, const ejob *j)
{
    sjob *sj = rx__calloc(1, sizeof(*sj));
    size_t n = (size_t)j->n_tasks;

    if (sj == NULL)
        return NULL;
    sj->id = j->id;
    sj->n_tasks = j->n_tasks;
    sj->st = rx__calloc(n, 1);
    sj->sq.code = rx__calloc(n, 1);
    sj->wait_ms = rx__calloc(n, sizeof(*sj->wait_ms));
    if (sj->st == NULL || sj->sq.code == NULL || sj->wait_ms == NULL) {
        sjob_free(sj);
        return NULL;
    }
    (void)e;
    return sj;
}

/* Read what the store and the spool know of a job followed for the first time. */
static rx_err
sjob_load(engine *e, sjob *sj, ejob *j)
{
    char dir[PATH_MAX];
    rx_err err;

    err = store_tasks_of_job_each(e->st, sj->id, load_row, sj);
    if (err != RX_OK)
        return err;
    if (job_dir(e, sj->id, dir, sizeof(dir)) == 0) {
        if (read_slurm_id(dir, &sj->slurm_id) == 0) {
            /* Released or not, we cannot know: releasing a released array is harmless. */
            sj->need_release = 1;
            sj->alive = 1;
        } else if (has_marker(dir)) {
            sj->found_marker = 1;
            sj->alive = 1;
        }
    }
    j->ext_alive = sj->alive;
    sj->loaded = 1;
    return RX_OK;
}

/* Look at the active jobs. Caller holds mu. */
static void
round_plan(engine *e, exec_slurm *x)
{
    sjob **pp = &x->jobs;

    for (sjob *sj = x->jobs; sj != NULL; sj = sj->next)
        sj->present = 0;
    /* Both lists are in id order (the active list is oldest first): one walk matches them. */
    for (ejob *j = e->a_head; j != NULL; j = j->a_next) {
        sjob *sj;

        while (*pp != NULL && (*pp)->id < j->id)
            pp = &(*pp)->next;
        if (*pp != NULL && (*pp)->id == j->id) {
            sj = *pp;
        } else {
            sj = sjob_new(e, j);
            if (sj == NULL) {
                rx__log(RX_LOG_WARN, "slurm: out of memory following job %" PRId64, j->id);
                continue;
            }
            sj->next = *pp;
            *pp = sj;
        }
        pp = &sj->next;
        if (!sj->loaded && sjob_load(e, sj, j) != RX_OK) {
            rx__log(RX_LOG_WARN, "slurm: load job %" PRId64 " failed: %s", j->id,
                    store_errmsg(e->st));
            continue;
        }
        sj->present = 1;
        sj->stop = j->cancel_requested || j->cleanup_requested || j->stop_task >= 0;
        sj->timeout_ms = j->timeout_ms;
        sj->num_tasks = j->num_tasks;
        sj->has_args = j->has_args;
        sj->submit = 0;
        if (sj->slurm_id == 0 && !sj->found_marker && !sj->stop && !e->hold &&
            sj->start_err == NULL) {
            char why[600];
            rx_err err = engine_prepare_spool(e, j, why, sizeof(why));

            if (err == RX_OK) {
                sj->submit = 1;
            } else if (err != RX_ENOMEM && err != RX_ESTORE) {
                char msg[700];

                (void)snprintf(msg, sizeof(msg), "cannot start: %s", why);
                sj->start_err = rx__strdup(msg);
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Round, step 2: Slurm and the spool, without the mutex
 * ------------------------------------------------------------------------------------------- */

static int
write_small(const char *dir, const char *name, const char *text)
{
    return spool_write_atomic(dir, name, text, strlen(text), 1) == RX_OK ? 0 : -1;
}

static void
release(sjob *sj)
{
    char id[32];
    const char *argv[] = {"scontrol", "release", id, NULL};
    slurm_run r;

    (void)snprintf(id, sizeof(id), "%" PRId64, sj->slurm_id);
    if (slurm_run_cmd(argv, NULL, 0, SLURM_CMD_TIMEOUT_MS, &r) != RX_OK)
        return;
    /* "already released", or not held (a recovered array): fine. Only an unreachable
     * controller is worth another try. */
    if (slurm_run_ok(&r) || !slurm_err_transient(r.err))
        sj->need_release = 0;
    else
        log_cmd_failure("scontrol release", &r);
    slurm_run_free(&r);
}

static void scancel(int64_t slurm_id, int pending_only);

/* Make the held array slurm_id the job's: its id on disk first, then released, unless the
 * job was canceled meanwhile. An id that cannot be written is canceled (it is held: nothing of
 * it ran) and the job tried again. */
static void
adopt(engine *e, const char *dir, sjob *sj, int64_t slurm_id)
{
    char idtext[32];
    ejob *j;
    int go;

    (void)snprintf(idtext, sizeof(idtext), "%" PRId64 "\n", slurm_id);
    if (write_small(dir, SLURM_ID_FILE, idtext) != 0) {
        rx__log(RX_LOG_ERROR, "slurm: write '%s/%s' failed: %s; canceling held array %" PRId64, dir,
                SLURM_ID_FILE, strerror(errno), slurm_id);
        scancel(slurm_id, 0);
        sj->alive = 0;
        return;
    }
    sj->slurm_id = slurm_id;
    sj->alive = 1;
    sj->need_release = 1;
    /* From here a cancel must wait for Slurm (ext_alive), so it cannot end the job while a
     * task we are about to release starts. A job canceled before this point never runs. */
    pthread_mutex_lock(&e->mu);
    j = engine_find(e, sj->id);
    go = j != NULL && !rx_job_status_is_terminal(j->status) && !j->cancel_requested &&
         !j->cleanup_requested && j->stop_task < 0;
    if (go)
        j->ext_alive = 1;
    pthread_mutex_unlock(&e->mu);
    if (go) {
        release(sj);
    } else {
        scancel(slurm_id, 0);
        sj->need_release = 0;
        sj->alive = 0;
    }
}

/* Submit the job's array, held; record its id; release it. */
static void
submit(engine *e, sjob *sj)
{
    char dir[PATH_MAX], name[64], comment[PATH_MAX + 16], array[96], out[PATH_MAX + 32];
    char time_opt[48];
    const char *argv[20];
    size_t n = 0;
    char *script;
    slurm_run r;
    int64_t id, minutes;

    if (job_dir(e, sj->id, dir, sizeof(dir)) != 0)
        return;
    if (write_small(dir, SLURM_MARKER_FILE, "") != 0) {
        rx__log(RX_LOG_WARN, "slurm: write '%s/%s' failed: %s", dir, SLURM_MARKER_FILE,
                strerror(errno));
        return;
    }
    script = slurm_batch_script(e->shim_exe, dir, sj->n_tasks, sj->timeout_ms, e->grace_ms,
                                sj->has_args, e->output_bytes, e->result_bytes);
    if (script == NULL)
        return;
    (void)snprintf(name, sizeof(name), "--job-name=rxjob-%" PRId64, sj->id);
    (void)snprintf(comment, sizeof(comment), "--comment=%s", dir);
    if (sj->num_tasks > 0)
        (void)snprintf(array, sizeof(array), "--array=0-%" PRIu64 "%%%u", sj->n_tasks - 1,
                       sj->num_tasks);
    else
        (void)snprintf(array, sizeof(array), "--array=0-%" PRIu64, sj->n_tasks - 1);
    (void)snprintf(out, sizeof(out), "--output=%s/slurm.log", dir);
    argv[n++] = "sbatch";
    argv[n++] = "--parsable";
    argv[n++] = "--hold";
    argv[n++] = name;
    argv[n++] = comment;
    argv[n++] = array;
    argv[n++] = out;
    argv[n++] = "--open-mode=append";
    argv[n++] = "--chdir=/";
    argv[n++] = "--no-requeue";
    argv[n++] = "--ntasks=1";
    minutes = slurm_time_minutes(sj->timeout_ms, e->grace_ms);
    if (minutes > 0) {
        (void)snprintf(time_opt, sizeof(time_opt), "--time=%" PRId64, minutes);
        argv[n++] = time_opt;
    }
    argv[n] = NULL;

    if (slurm_run_cmd(argv, script, strlen(script), SLURM_CMD_TIMEOUT_MS, &r) != RX_OK) {
        rx__free(script);
        return;
    }
    rx__free(script);
    if (!slurm_run_ok(&r)) {
        char why[512], msg[700];

        slurm_run_why(&r, why, sizeof(why));
        rx__log(RX_LOG_WARN, "slurm: sbatch of job %" PRId64 " failed: %s", sj->id, why);
        if (r.started && !r.timed_out && !slurm_err_transient(r.err)) {
            /* Slurm refused the job (a bad partition, an array over MaxArraySize...). */
            (void)snprintf(msg, sizeof(msg), "cannot start: sbatch refused the job: %s", why);
            rx__free(sj->start_err);
            sj->start_err = rx__strdup(msg);
        } else {
            /* A time-out may hide a submission that went through: look for it by name before
             * submitting again. */
            sj->found_marker = 1;
            sj->alive = 1;
        }
        slurm_run_free(&r);
        return;
    }
    /* --parsable: "ID" or "ID;CLUSTER". */
    r.out[strcspn(r.out, ";\n")] = '\0';
    if (rx__parse_i64(r.out, 1, INT64_MAX, &id) != RX_OK) {
        rx__log(RX_LOG_WARN, "slurm: sbatch printed '%s', not a job id", r.out);
        slurm_run_free(&r);
        sj->found_marker = 1;
        sj->alive = 1;
        return;
    }
    slurm_run_free(&r);
    adopt(e, dir, sj, id);
}

/* A submission was begun before a crash: find the array by its name and comment. */
static void
find_by_name(engine *e, sjob *sj)
{
    char dir[PATH_MAX], name[64];
    const char *argv[] = {"squeue", "--noheader", "--states=all", name, "--format=%F|%K|%T|%r|%k",
                          NULL};
    slurm_run r;
    char *line, *save = NULL;
    int64_t found = 0;

    if (job_dir(e, sj->id, dir, sizeof(dir)) != 0)
        return;
    (void)snprintf(name, sizeof(name), "--name=rxjob-%" PRId64, sj->id);
    if (slurm_run_cmd(argv, NULL, 0, SLURM_CMD_TIMEOUT_MS, &r) != RX_OK)
        return;
    if (!slurm_run_ok(&r)) {
        log_cmd_failure("squeue --name", &r);
        slurm_run_free(&r);
        return;
    }
    sj->found_marker = 0;
    sj->alive = 0; /* unless found: never submitted, or held and never released */
    for (line = strtok_r(r.out, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        slurm_line sl;

        if (slurm_parse_squeue_line(line, &sl) != 0 || strcmp(sl.comment, dir) != 0 ||
            sl.array_job_id == found)
            continue;
        if (found == 0) {
            found = sl.array_job_id;
        } else {
            /* A second held array of the same job (a retried submission): never released. */
            scancel(sl.array_job_id, 0);
        }
    }
    slurm_run_free(&r);
    if (found > 0) {
        rx__log(RX_LOG_INFO, "slurm: found array %" PRId64 " of job %" PRId64 " by its name", found,
                sj->id);
        adopt(e, dir, sj, found);
    }
}

static void
scancel(int64_t slurm_id, int pending_only)
{
    char id[32];
    const char *argv[] = {"scancel", "--quiet", id, NULL, NULL};
    slurm_run r;

    (void)snprintf(id, sizeof(id), "%" PRId64, slurm_id);
    if (pending_only) {
        argv[2] = "--state=PENDING";
        argv[3] = id;
    }
    if (slurm_run_cmd(argv, NULL, 0, SLURM_CMD_TIMEOUT_MS, &r) != RX_OK)
        return;
    if (!slurm_run_ok(&r) && r.err[0] != '\0' && strstr(r.err, "already complet") == NULL &&
        strstr(r.err, "Invalid job id") == NULL)
        log_cmd_failure("scancel", &r);
    slurm_run_free(&r);
}

static sjob *
by_slurm_id(exec_slurm *x, int64_t slurm_id, sjob *hint)
{
    /* squeue prints an array's lines together: the last one found is the likely one. */
    if (hint != NULL && hint->slurm_id == slurm_id)
        return hint;
    for (sjob *sj = x->jobs; sj != NULL; sj = sj->next)
        if (sj->present && sj->slurm_id == slurm_id)
            return sj;
    return NULL;
}

/* Apply squeue's lines to the jobs they are about. */
static void
squeue_apply(engine *e, exec_slurm *x, char *out)
{
    char *line, *save = NULL;
    char dir[PATH_MAX] = "";
    sjob *last = NULL;

    for (line = strtok_r(out, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        slurm_line sl;
        sjob *sj;

        if (slurm_parse_squeue_line(line, &sl) != 0 || strcmp(sl.tasks, "N/A") == 0)
            continue;
        sj = by_slurm_id(x, sl.array_job_id, last);
        if (sj == NULL)
            continue;
        if (sj != last && job_dir(e, sj->id, dir, sizeof(dir)) != 0)
            continue;
        last = sj;
        /* A job id Slurm gave again, after its state was wiped, is not our array. */
        if (strcmp(sl.comment, dir) != 0)
            continue;
        if (view_mark(&sj->sq, sj->n_tasks, sl.tasks, sl.state, sl.reason) != 0)
            rx__log(RX_LOG_WARN, "slurm: squeue printed the task list '%s', ignoring", sl.tasks);
    }
}

/* One squeue for the arrays of interest; marks each answered job seen. */
static void
poll_squeue(engine *e, exec_slurm *x)
{
    sjob *from = x->jobs;

    while (from != NULL) {
        char *ids = NULL;
        size_t len = 0, cap = 0, count = 0;
        sjob *sj;
        slurm_run r;
        int all_unknown = 0;

        for (sj = from; sj != NULL && count < SLURM_IDS_PER_SQUEUE; sj = sj->next) {
            char one[32];
            int k;

            if (!sj->present || sj->slurm_id <= 0)
                continue;
            k = snprintf(one, sizeof(one), "%s%" PRId64, count ? "," : "", sj->slurm_id);
            if (len + (size_t)k + 1 > cap) {
                size_t c = cap ? cap * 2 : 256;
                char *p = rx__realloc(ids, c);

                if (p == NULL) {
                    rx__free(ids);
                    return;
                }
                ids = p;
                cap = c;
            }
            memcpy(ids + len, one, (size_t)k + 1);
            len += (size_t)k;
            count++;
        }
        if (count > 0) {
            const char *argv[] = {
                "squeue", "--noheader", "--states=all", NULL, "--format=%F|%K|%T|%r|%k", NULL};
            char *opt = rx__malloc(len + 8);

            if (opt == NULL) {
                rx__free(ids);
                return;
            }
            (void)snprintf(opt, len + 8, "--jobs=%s", ids);
            argv[3] = opt;
            if (slurm_run_cmd(argv, NULL, 0, SLURM_CMD_TIMEOUT_MS, &r) == RX_OK) {
                /* Every id unknown (forgotten) is an error for squeue; some unknown is not. */
                if (!slurm_run_ok(&r) && r.started && !r.timed_out &&
                    strstr(r.err, "Invalid job id specified") != NULL)
                    all_unknown = 1;
                if (slurm_run_ok(&r) || all_unknown) {
                    for (sjob *s = from; s != sj; s = s->next)
                        if (s->present && s->slurm_id > 0)
                            s->seen = 1;
                    if (!all_unknown)
                        squeue_apply(e, x, r.out);
                } else {
                    log_cmd_failure("squeue", &r);
                }
                slurm_run_free(&r);
            }
            rx__free(opt);
        }
        rx__free(ids);
        from = sj;
    }
}

/* sacct, for tasks slurmctld no longer knows (only when accounting is on). */
static void
ask_accounting(exec_slurm *x, sjob *sj)
{
    char id[48];
    const char *argv[] = {"sacct",
                          "--noheader",
                          "--parsable2",
                          "--allocations",
                          "--duplicates",
                          id,
                          "--format=JobID,State,Reason",
                          NULL};
    slurm_run r;
    char *line, *save = NULL;

    sj->acct_tried = 1;
    if (x->acct_off)
        return;
    if (sj->acct.code == NULL) {
        sj->acct.code = rx__calloc((size_t)sj->n_tasks, 1);
        if (sj->acct.code == NULL)
            return;
    }
    (void)snprintf(id, sizeof(id), "--jobs=%" PRId64, sj->slurm_id);
    if (slurm_run_cmd(argv, NULL, 0, SLURM_CMD_TIMEOUT_MS, &r) != RX_OK)
        return;
    if (!slurm_run_ok(&r)) {
        if (strstr(r.err, "disabled") != NULL || strstr(r.err, "accounting_storage/none")) {
            x->acct_off = 1;
            rx__log(RX_LOG_INFO, "slurm: accounting is off: forgotten tasks without an exit "
                                 "record are lost");
        } else {
            log_cmd_failure("sacct", &r);
        }
        slurm_run_free(&r);
        return;
    }
    for (line = strtok_r(r.out, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        slurm_acct_line al;

        if (slurm_parse_sacct_line(line, &al) != 0 || al.array_job_id != sj->slurm_id ||
            al.tasks[0] == '\0')
            continue;
        (void)view_mark(&sj->acct, sj->n_tasks, al.tasks, al.state, al.reason);
    }
    slurm_run_free(&r);
}

/* Decide, for every task of sj not ended yet, what this round has to record. */
static void
decide(engine *e, exec_slurm *x, sjob *sj)
{
    char dir[PATH_MAX], msg[PATH_MAX + 1200];
    int64_t now = rx__now_ms();
    int any_live = 0;
    uint64_t i;

    if (job_dir(e, sj->id, dir, sizeof(dir)) != 0)
        return;
    for (i = 0; i < sj->n_tasks; i++) {
        uint8_t q = sj->seen ? sj->sq.code[i] : SQ_ABSENT;
        spool_exit rec;
        rx_err rc;

        if (sj->seen && (q == SQ_QUEUED || q == SQ_RUNNING))
            any_live = 1;
        if (sj->st[i] == TS_ENDED)
            continue;
        if (sj->seen && q == SQ_QUEUED)
            continue;
        /* Slurm did not answer: only tasks known to have started may have ended. */
        if (!sj->seen && sj->st[i] == TS_NONE)
            continue;
        memset(&rec, 0, sizeof(rec));
        rc = spool_exit_read(dir, i, &rec);
        if (rc == RX_OK) {
            int stopped = rec.go && (rec.state == RX_TASK_STOPPED || rec.state == RX_TASK_SIGNALED);

            /* scancel signals every process of the array task, so the task itself may die of
             * our SIGTERM before its supervisor stops it: that is the stop we asked for. */
            if (sj->stop && rec.go && rec.state == RX_TASK_SIGNALED &&
                (rec.signal == SIGTERM || rec.signal == SIGKILL))
                rec.state = RX_TASK_STOPPED;

            if (stopped && !sj->stop && sj->seen && q == SQ_DONE_FAIL) {
                const sfail *f = view_why(&sj->sq, i);
                rx_task_state ts;

                /* Stopped by Slurm (its time limit, preemption, an scancel not ours): say so. */
                if (f != NULL) {
                    slurm_failure(f->state, f->reason, rec.error, &ts, msg, sizeof(msg));
                    if (event_end_synth(sj, i, ts, msg, &rec) != 0)
                        break;
                    spool_exit_free(&rec);
                    continue;
                }
            } else if (stopped && !sj->stop && sj->seen && q == SQ_RUNNING) {
                /* Its end in Slurm (and so why) comes in a moment. */
                if (sj->wait_ms[i] == 0)
                    sj->wait_ms[i] = now;
                if (now - sj->wait_ms[i] < SLURM_RECORD_GRACE_MS) {
                    spool_exit_free(&rec);
                    continue;
                }
            }
            {
                sevent *ev = event_add(sj, i, 0);

                if (ev == NULL) {
                    spool_exit_free(&rec);
                    break;
                }
                ev->rec = rec; /* owned by the event now */
            }
            continue;
        }
        spool_exit_free(&rec);
        if (!sj->seen)
            continue; /* Slurm did not answer: wait */
        if (q == SQ_RUNNING) {
            sj->wait_ms[i] = 0;
            if (sj->st[i] == TS_NONE && event_add(sj, i, 1) == NULL)
                break;
            continue;
        }
        /* Over in Slurm (or unknown to it), and no exit record. */
        if (sj->stop) {
            /* Canceled or stopped by us. A task never seen running never ran as far as the
             * job is concerned; one that ran was killed before it wrote its record. */
            if (sj->st[i] == TS_RUNNING &&
                event_end_synth(sj, i, RX_TASK_STOPPED,
                                "killed by Slurm before its supervisor wrote an exit record",
                                NULL) != 0)
                break;
            continue;
        }
        if (sj->wait_ms[i] == 0)
            sj->wait_ms[i] = now;
        if (now - sj->wait_ms[i] < SLURM_RECORD_GRACE_MS)
            continue;
        if (q == SQ_ABSENT && !sj->acct_tried)
            ask_accounting(x, sj);
        if (q == SQ_ABSENT && sj->acct.code != NULL && sj->acct.code[i] != SQ_ABSENT) {
            uint8_t a = sj->acct.code[i];
            const sfail *f = view_why(&sj->acct, i);

            if (a == SQ_QUEUED || a == SQ_RUNNING)
                continue; /* accounting says it is not over: wait */
            if (a == SQ_DONE_FAIL && f != NULL) {
                rx_task_state ts;

                slurm_failure(f->state, f->reason, NULL, &ts, msg, sizeof(msg));
                if (event_end_synth(sj, i, ts, msg, NULL) != 0)
                    break;
                continue;
            }
            q = a;
        }
        if (q == SQ_DONE_FAIL) {
            const sfail *f = view_why(&sj->sq, i);
            rx_task_state ts;

            slurm_failure(f ? f->state : "FAILED", f ? f->reason : "", NULL, &ts, msg, sizeof(msg));
            if (event_end_synth(sj, i, ts, msg, NULL) != 0)
                break;
        } else if (q == SQ_DONE_OK) {
            (void)snprintf(msg, sizeof(msg),
                           "lost: Slurm says array task %" PRId64 "_%" PRIu64
                           " COMPLETED, but its exit record never appeared in '%s' (is the "
                           "spool directory shared with the nodes?)",
                           sj->slurm_id, i, dir);
            if (event_end_synth(sj, i, RX_TASK_LOST, msg, NULL) != 0)
                break;
        } else {
            (void)snprintf(msg, sizeof(msg),
                           "lost: Slurm no longer knows array task %" PRId64 "_%" PRIu64
                           " (its MinJobAge passed, or slurmctld lost its state), accounting "
                           "has no word of it, and it left no exit record",
                           sj->slurm_id, i);
            if (event_end_synth(sj, i, RX_TASK_LOST, msg, NULL) != 0)
                break;
        }
    }
    /* (A loop cut short by a lack of memory saw too little to say nothing is left.) */
    if (sj->seen && i == sj->n_tasks)
        sj->alive = any_live;
}

/* Everything of a round that talks to Slurm or reads the spool. */
static void
round_io(engine *e, exec_slurm *x)
{
    int64_t now = rx__now_ms();

    for (size_t i = 0; i < x->n_orphans; i++) {
        scancel(x->orphans[i], 1);
        scancel(x->orphans[i], 0);
    }
    x->n_orphans = 0;
    for (sjob *sj = x->jobs; sj != NULL; sj = sj->next) {
        if (!sj->present)
            continue;
        sj->seen = 0;
        sj->acct_tried = 0;
        view_reset(&sj->sq, sj->n_tasks);
        view_reset(&sj->acct, sj->n_tasks);
        if (sj->found_marker)
            find_by_name(e, sj);
        if (sj->submit && sj->slurm_id == 0 && !sj->found_marker)
            submit(e, sj);
        if (sj->need_release && sj->slurm_id > 0 && !sj->stop)
            release(sj);
        if (sj->stop && sj->slurm_id > 0 && sj->alive &&
            (sj->cancel_ms == 0 || now - sj->cancel_ms >= SLURM_CANCEL_AGAIN_MS)) {
            /* Pending tasks first, so none of them starts while the running ones are stopped. */
            scancel(sj->slurm_id, 1);
            scancel(sj->slurm_id, 0);
            sj->cancel_ms = now;
        }
    }
    poll_squeue(e, x);
    for (sjob *sj = x->jobs; sj != NULL; sj = sj->next)
        if (sj->present && sj->start_err == NULL)
            decide(e, x, sj);
}

/* ---------------------------------------------------------------------------------------------
 * Round, step 3: record, under the mutex
 * ------------------------------------------------------------------------------------------- */

static int
has_changes(const sjob *sj, const ejob *j)
{
    return sj->n_ev > 0 || sj->start_err != NULL || j->ext_alive != sj->alive;
}

static rx_err
apply_job(engine *e, sjob *sj, ejob *j)
{
    rx_err err = engine_touch(e, j);

    if (err != RX_OK)
        return err;
    j->ext_alive = sj->alive;
    if (sj->start_err != NULL) {
        spool_exit rec;

        memset(&rec, 0, sizeof(rec));
        rec.go = 1;
        rec.state = RX_TASK_START_FAILED;
        rec.exit_status = -1;
        rec.started_s = engine_now_s();
        rec.ended_s = rec.started_s;
        rec.error = sj->start_err;
        for (uint64_t i = 0; i < sj->n_tasks && err == RX_OK; i++) {
            if (sj->st[i] == TS_ENDED)
                continue;
            if (sj->st[i] == TS_NONE)
                j->running++;
            err = engine_task_ended(e, j, i, NULL, rec.started_s, &rec, RX_OK);
        }
        return err;
    }
    for (size_t k = 0; k < sj->n_ev && err == RX_OK; k++) {
        sevent *ev = &sj->ev[k];

        if (ev->start) {
            store_task_row row;

            memset(&row, 0, sizeof(row));
            row.job_id = j->id;
            row.idx = ev->idx;
            row.running = 1;
            row.started_s = engine_now_s();
            row.exit_status = -1;
            err = store_task_put(e->st, &row);
            if (err == RX_OK)
                j->running++;
        } else {
            if (sj->st[ev->idx] == TS_NONE)
                j->running++; /* engine_task_ended counts it out again */
            err = engine_task_ended(e, j, ev->idx, NULL, engine_now_s(), &ev->rec, RX_OK);
        }
    }
    return err;
}

/* After a commit: what the store has now. */
static void
applied(engine *e, sjob *sj)
{
    if (sj->start_err != NULL) {
        memset(sj->st, TS_ENDED, (size_t)sj->n_tasks);
        return;
    }
    for (size_t k = 0; k < sj->n_ev; k++) {
        sevent *ev = &sj->ev[k];

        if (ev->start) {
            sj->st[ev->idx] = TS_RUNNING;
            e->tasks_started_total++;
        } else {
            if (sj->st[ev->idx] == TS_NONE)
                e->tasks_started_total++;
            sj->st[ev->idx] = TS_ENDED;
            sj->wait_ms[ev->idx] = 0;
        }
    }
}

static void
round_apply(engine *e, exec_slurm *x)
{
    int began = 0;
    rx_err err = RX_OK;

    for (sjob *sj = x->jobs; sj != NULL && err == RX_OK; sj = sj->next) {
        ejob *j;

        if (!sj->present)
            continue;
        j = engine_find(e, sj->id);
        if (j == NULL || rx_job_status_is_terminal(j->status)) {
            /* Gone, or canceled while we submitted it: no task of it may run. (A job over
             * because all its tasks ended has at most tasks completing in Slurm.) */
            if (sj->slurm_id > 0 && sj->alive && (j == NULL || sj->stop || j->cancel_requested) &&
                orphan_add(x, sj->slurm_id) == 0)
                sj->alive = 0;
            sj->alive = 0;
            sj->present = 0;
            continue;
        }
        if (!has_changes(sj, j))
            continue;
        if (!began) {
            err = store_begin(e->st);
            if (err != RX_OK) {
                rx__log(RX_LOG_ERROR, "%s", store_errmsg(e->st));
                break;
            }
            began = 1;
        }
        err = apply_job(e, sj, j);
    }
    if (began && err == RX_OK) {
        err = engine_commit_touched(e); /* rolls back and undoes memory on failure */
        if (err == RX_OK) {
            for (sjob *sj = x->jobs; sj != NULL; sj = sj->next) {
                if (!sj->present)
                    continue;
                applied(e, sj);
                if (sj->start_err != NULL) {
                    rx__free(sj->start_err);
                    sj->start_err = NULL;
                    sj->present = 0; /* over: all its tasks failed */
                }
            }
            engine_after_commit(e);
        }
    } else if (began) {
        rx__log(RX_LOG_ERROR, "slurm: recording the round failed: %s", rx_strerror(err));
        engine_abort_touched(e);
    }
    for (sjob *sj = x->jobs; sj != NULL; sj = sj->next)
        events_clear(sj);
    /* Jobs no longer followed. */
    for (sjob **pp = &x->jobs; *pp != NULL;) {
        sjob *sj = *pp;
        ejob *j = engine_find(e, sj->id);

        if (sj->present && j != NULL) {
            pp = &sj->next;
            continue;
        }
        if (sj->slurm_id > 0 && sj->alive)
            (void)orphan_add(x, sj->slurm_id);
        *pp = sj->next;
        sjob_free(sj);
    }
}

/* ---------------------------------------------------------------------------------------------
 * The thread, recovery, creation
 * ------------------------------------------------------------------------------------------- */

void *
exec_slurm_main(void *arg)
{
    engine *e = arg;
    exec_slurm *x = e->slurm;

    for (;;) {
        struct pollfd pfd = {.fd = e->wake_fd, .events = POLLIN};
        uint64_t drained;

        pthread_mutex_lock(&e->mu);
        if (e->stopping) {
            pthread_mutex_unlock(&e->mu);
            break;
        }
        round_plan(e, x);
        pthread_mutex_unlock(&e->mu);

        round_io(e, x);

        pthread_mutex_lock(&e->mu);
        round_apply(e, x);
        pthread_mutex_unlock(&e->mu);

        if (poll(&pfd, 1, (int)x->poll_ms) > 0 && read(e->wake_fd, &drained, sizeof(drained)) < 0)
            drained = 0;
    }
    return NULL;
}

void
exec_slurm_recover(engine *e)
{
    for (size_t i = 0; i < e->n_jobs; i++) {
        ejob *j = e->jobs[i];
        char dir[PATH_MAX];
        int64_t id;

        if (rx_job_status_is_terminal(j->status) && !j->cleanup_requested)
            continue;
        if (job_dir(e, j->id, dir, sizeof(dir)) != 0)
            continue;
        if (read_slurm_id(dir, &id) == 0 || has_marker(dir))
            j->ext_alive = 1;
    }
}

rx_err
exec_slurm_new(const engine_opts *opts, exec_slurm **out_x, char *errbuf, size_t errlen)
{
    const char *argv[] = {"sbatch", "--version", NULL};
    exec_slurm *x;
    slurm_run r;
    rx_err err;

    err = slurm_run_cmd(argv, NULL, 0, SLURM_CMD_TIMEOUT_MS, &r);
    if (err != RX_OK)
        return err;
    if (!slurm_run_ok(&r)) {
        char why[512];

        slurm_run_why(&r, why, sizeof(why));
        (void)snprintf(errbuf, errlen, "slurm: 'sbatch --version' failed: %s", why);
        slurm_run_free(&r);
        return RX_EINVAL;
    }
    slurm_run_free(&r);
    x = rx__calloc(1, sizeof(*x));
    if (x == NULL)
        return RX_ENOMEM;
    x->poll_ms = opts->poll_ms > 0 ? opts->poll_ms : SLURM_DEFAULT_POLL_MS;
    *out_x = x;
    return RX_OK;
}

void
exec_slurm_free(exec_slurm *x)
{
    if (x == NULL)
        return;
    while (x->jobs != NULL) {
        sjob *sj = x->jobs;

        x->jobs = sj->next;
        sjob_free(sj);
    }
    rx__free(x->orphans);
    rx__free(x);
}
