/*
 * pool.c - the engine that runs one job's tasks on this host (see pool.h).
 *
 * One loop in the calling thread does everything: it starts units (a command process, or a
 * function worker with a chunk of tasks) while slots are free, polls their pidfds and pipes,
 * records each task's end in its result slot, enforces time limits on CLOCK_MONOTONIC, stops
 * the job on the first failure when asked, and reports finished slots in task order (callback,
 * console output). No signal handler is installed: pidfds say when a child has exited.
 *
 * A worker reports every task with one write(2) on its pipe, so a report survives the worker's
 * death (it is in the pipe) and a worker that crashes or is killed loses no finished task. The
 * task a worker is on is read from a shared page: on its death, that task failed (or hit its
 * time limit), the tasks after it in the chunk never started and are queued again.
 */
#define _GNU_SOURCE
#include "exec/pool.h"

#include "core/internal.h"
#include "core/results.h"
#include "core/task.h"
#include "exec/argv.h"
#include "exec/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

extern char **environ;

#define CHUNK_AUTO_MAX    65536u
#define READ_PIECE_BYTES  (64 * 1024)
#define POLL_TIMELIMIT_MS 50    /* how often worker time limits are checked */
#define POLL_NO_PIDFD_MS  10    /* how often exits are checked without pidfds */
#define POLL_MAX_MS       60000 /* the longest single poll */

enum kill_reason { KILL_NONE = 0, KILL_TIMEOUT, KILL_STOP };

/* What a worker says when a task ends: this header, then value_len + err_len bytes. */
typedef struct msg_done {
    uint64_t index;
    int64_t start_ms;
    int64_t end_ms;
    uint64_t out_off;
    uint64_t out_end;
    uint32_t value_len;
    uint32_t err_len;
    int32_t rc;
    uint32_t pad;
} msg_done;

/* The page shared with workers. */
typedef struct shm_worker {
    _Atomic int64_t task; /* the task being run, or -1 */
    atomic_int reporting; /* its function has returned; the report is being written */
    _Atomic int64_t start_ms;
    _Atomic uint64_t out_off;
} shm_worker;

typedef struct shm_page {
    atomic_int stop; /* set on the first failure when continue_on_failure is off */
    shm_worker w[];
} shm_page;

typedef struct unit {
    int active;
    int is_worker;
    rx__proc proc;
    enum kill_reason kill;
    int64_t killed_task; /* the task whose time limit was hit */
    int64_t sigkill_at_ms;
    /* a command */
    int cmd_out_fd; /* the unit's output file, kept open across its tasks; -1 = none yet */
    size_t task;
    int64_t deadline_ms;
    int32_t out_file;
    /* a worker */
    int pipe_fd;
    size_t *chunk;
    size_t chunk_n;
    unsigned char *rbuf;
    size_t rlen;
    size_t rcap;
} unit;

typedef struct pool {
    const rx__pool_job *job;
    rx_results *res;
    unsigned char *resolved; /* per task: its slot is final */
    size_t n_resolved;
    size_t next_report;
    /* tasks to start: fresh ones from next_fresh, requeued ones first */
    size_t next_fresh;
    size_t *requeue;
    size_t n_requeue;
    unit *units;
    unsigned n_units;
    unsigned n_active;
    shm_page *shm;
    size_t shm_len;
    int stopping;
    int throttled;       /* a spawn or fork lacked resources: wait for a unit to end */
    int64_t failed_task; /* the task whose failure stopped the job, or -1 */
    unsigned n_worker_files;
    /* commands */
    char **base_env; /* borrowed strings from environ and work->env */
    size_t n_base_env;
    char *stdin_path;
    char *errbuf;
    size_t errlen;
} pool;

static void
pool_error(pool *p, const char *what, int err)
{
    (void)snprintf(p->errbuf, p->errlen, "exec: %s failed: %s", what, strerror(err));
}

/* ---------------------------------------------------------------------------------------------
 * The spool: a private temporary directory for output, results and stdin
 * ------------------------------------------------------------------------------------------- */

static rx_err
make_spool(rx_results *res, char *errbuf, size_t errlen)
{
    const char *base = getenv("TMPDIR");
    char path[PATH_MAX];

    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    if (snprintf(path, sizeof(path), "%s/rxjob-XXXXXX", base) >= (int)sizeof(path)) {
        (void)snprintf(errbuf, errlen, "exec: TMPDIR is too long");
        return RX_ESYSTEM;
    }
    if (mkdtemp(path) == NULL) {
        (void)snprintf(errbuf, errlen, "exec: create spool in '%s' failed: %s", base,
                       strerror(errno));
        return RX_ESYSTEM;
    }
    /* An absolute path: a relative TMPDIR must not break tasks with a cwd, or a caller that
     * changes directory before reading the output. */
    if (path[0] != '/') {
        char *abs = realpath(path, NULL);

        if (abs == NULL || strlen(abs) >= sizeof(path)) {
            (void)snprintf(errbuf, errlen, "exec: resolve spool '%s' failed: %s", path,
                           strerror(abs ? ENAMETOOLONG : errno));
            free(abs);
            (void)rmdir(path);
            return RX_ESYSTEM;
        }
        memcpy(path, abs, strlen(abs) + 1);
        free(abs);
    }
    res->spool_dir = rx__strdup(path);
    if (res->spool_dir == NULL) {
        (void)rmdir(path);
        return RX_ENOMEM;
    }
    return RX_OK;
}

static int
spool_open(const rx_results *res, const char *name, char *path, size_t path_len)
{
    if (snprintf(path, path_len, "%s/%s", res->spool_dir, name) >= (int)path_len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return rx__fd_above_stdio(open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
}

static uint64_t
file_size(const char *path)
{
    struct stat st;

    if (stat(path, &st) != 0 || st.st_size < 0)
        return 0;
    return (uint64_t)st.st_size;
}

/* ---------------------------------------------------------------------------------------------
 * Reporting finished slots in task order
 * ------------------------------------------------------------------------------------------- */

static void
report_ready(pool *p)
{
    const rx__pool_job *job = p->job;

    while (p->next_report < p->res->n && p->resolved[p->next_report]) {
        size_t i = p->next_report++;

        if (job->console_output) {
            if (printf("==> task %zu <==\n", i) < 0 ||
                rx_results_write_output(p->res, i, stdout) != RX_OK)
                rx__log(RX_LOG_WARN, "exec: writing the output of task %zu failed, ignoring", i);
            (void)fflush(stdout);
        }
        if (job->callback != NULL)
            job->callback(p->res, i, job->callback_user);
    }
}

/* A task's slot is final. A failure stops the job when continue_on_failure is off. */
static void resolve(pool *p, size_t task);

static void stop_job(pool *p);

static void
resolve(pool *p, size_t task)
{
    rx__slot *s = &p->res->slots[task];

    if (p->resolved[task])
        return;
    p->resolved[task] = 1;
    p->n_resolved++;
    if (s->state != RX_TASK_OK && !p->job->continue_on_failure && !p->stopping) {
        p->failed_task = (int64_t)task;
        stop_job(p);
    }
}

/* Mark a task that never started as not run, because the job stopped. */
static void
resolve_not_run(pool *p, size_t task)
{
    rx__slot *s = &p->res->slots[task];

    if (p->resolved[task])
        return;
    s->state = RX_TASK_NOT_RUN;
    (void)rx__slot_set_error(s,
                             "not run: the job stopped after task %lld failed "
                             "(continue_on_failure is false)",
                             (long long)p->failed_task);
    resolve(p, task);
}

/* ---------------------------------------------------------------------------------------------
 * Stopping units
 * ------------------------------------------------------------------------------------------- */

static void
unit_kill(pool *p, unit *u, enum kill_reason why)
{
    if (u->kill != KILL_NONE)
        return;
    u->kill = why;
    u->sigkill_at_ms = rx__now_ms() + p->job->grace_ms;
    (void)rx__proc_signal_group(&u->proc, SIGTERM);
}

static void
stop_job(pool *p)
{
    p->stopping = 1;
    if (p->shm != NULL)
        atomic_store(&p->shm->stop, 1);
    for (unsigned k = 0; k < p->n_units; k++) {
        if (p->units[k].active)
            unit_kill(p, &p->units[k], KILL_STOP);
    }
    /* Tasks that never started are final now: report them in order. */
    for (size_t i = 0; i < p->n_requeue; i++)
        resolve_not_run(p, p->requeue[i]);
    p->n_requeue = 0;
    while (p->next_fresh < p->res->n)
        resolve_not_run(p, p->next_fresh++);
}

/* ---------------------------------------------------------------------------------------------
 * Commands
 * ------------------------------------------------------------------------------------------- */

/* The environment every task shares: the caller's, less what work->env overrides, plus it. */
static rx_err
build_base_env(pool *p)
{
    return rx__env_merge(environ, p->job->work->env, 0, &p->base_env, &p->n_base_env);
}

/* The task's argv: the rule of exec/argv.h, with the job's argument for this task. */
static rx_err
task_argv(const pool *p, size_t task, char ***out_argv, size_t *out_n)
{
    return rx__task_argv(p->job->work->argv, p->job->args ? &p->job->args[task] : NULL, out_argv,
                         out_n);
}

static int
is_transient(int err)
{
    return err == EAGAIN || err == ENOMEM;
}

/*
 * A process could not be made for want of resources (the user's process limit, memory). While
 * other units run, the task waits for one of them to end; with none running, waiting would not
 * help, and the job fails as a whole.
 */
static rx_err
throttle(pool *p, size_t task, const char *what, int err)
{
    if (p->n_active == 0) {
        pool_error(p, what, err);
        return RX_ESYSTEM;
    }
    p->requeue[p->n_requeue++] = task;
    p->throttled = 1;
    return RX_OK;
}

static rx_err
start_command(pool *p, unit *u, size_t task)
{
    rx__slot *s = &p->res->slots[task];
    char out_path[PATH_MAX];
    char name[64];
    char **argv = NULL;
    size_t argc = 0;
    char **envp = NULL;
    char *task_env[3] = {NULL, NULL, NULL};
    rx__spawn_req req;
    int out_fd = -1, spawn_errno = 0;
    rx_err err;

    err = task_argv(p, task, &argv, &argc);
    if (err != RX_OK)
        return err;
    /* One output file per unit, opened once: the tasks a unit runs one after another append to
     * it, and each slot records its byte range (a file create costs more than a spawn on some
     * filesystems). The child shares the descriptor's offset, so lseek tells where it ended. */
    if (u->cmd_out_fd < 0) {
        (void)snprintf(name, sizeof(name), "u%u.out", (unsigned)(u - p->units));
        u->cmd_out_fd = spool_open(p->res, name, out_path, sizeof(out_path));
        if (u->cmd_out_fd < 0) {
            pool_error(p, "create task output", errno);
            err = RX_ESYSTEM;
            goto done;
        }
        err = rx__results_add_file(p->res, out_path, &u->out_file);
        if (err != RX_OK)
            goto done;
    }
    out_fd = u->cmd_out_fd;
    {
        off_t off = lseek(out_fd, 0, SEEK_END); /* SEEK_END: whatever a stray writer left */

        s->out_off = off < 0 ? 0 : (uint64_t)off;
    }
    task_env[0] = rx__env_entry("RXJOB_TASK_INDEX", "%zu", task);
    task_env[1] = rx__env_entry("RXJOB_TASK_COUNT", "%zu", p->res->n);
    task_env[2] = rx__env_entry("RXJOB_RESULT", "%s/t%zu.result", p->res->spool_dir, task);
    envp = rx__calloc(p->n_base_env + 4, sizeof(*envp));
    if (task_env[0] == NULL || task_env[1] == NULL || task_env[2] == NULL || envp == NULL) {
        err = RX_ENOMEM;
        goto done;
    }
    memcpy(envp, p->base_env, p->n_base_env * sizeof(*envp));
    memcpy(envp + p->n_base_env, task_env, sizeof(task_env));

    req.argv = (const char *const *)argv;
    req.envp = envp;
    req.cwd = p->job->work->cwd;
    req.stdin_path = p->stdin_path;
    req.out_fd = out_fd;
    s->start_ms = rx__now_ms();
    s->out_file = u->out_file;
    err = rx__spawn(&req, &u->proc, &spawn_errno);
    if (err != RX_OK && is_transient(spawn_errno)) {
        /* Out of processes or memory for now: the machine's failure, not the task's. */
        s->start_ms = 0;
        err = throttle(p, task, "spawn", spawn_errno);
        goto done;
    }
    if (err != RX_OK) {
        /* The task could not start: its failure, not the job's. */
        s->end_ms = s->start_ms;
        s->state = RX_TASK_START_FAILED;
        if (spawn_errno == ENOENT && req.cwd != NULL && access(req.cwd, X_OK) != 0)
            err = rx__slot_set_error(s, "cannot start '%s': working directory '%s': %s", argv[0],
                                     req.cwd, strerror(errno));
        else if (spawn_errno == ENOENT && strchr(argv[0], '/') != NULL)
            err = rx__slot_set_error(s, "no such program: '%s'", argv[0]);
        else if (spawn_errno == ENOENT)
            err = rx__slot_set_error(s, "command not found: '%s'%s", argv[0],
                                     rx__not_found_hint(argv[0]));
        else
            err = rx__slot_set_error(s, "cannot start '%s': %s", argv[0], strerror(spawn_errno));
        if (err == RX_OK)
            resolve(p, task);
        goto done;
    }
    u->active = 1;
    u->is_worker = 0;
    u->task = task;
    u->kill = KILL_NONE;
    u->killed_task = -1;
    u->sigkill_at_ms = 0;
    u->deadline_ms = p->job->timeout_ms > 0 ? s->start_ms + p->job->timeout_ms : 0;
    p->n_active++;
done:
    rx__strv_free(argv, argc);
    for (size_t i = 0; i < 3; i++)
        rx__free(task_env[i]);
    rx__free(envp);
    return err;
}

/* Read what a command wrote to $RXJOB_RESULT into its slot, then remove the file. */
static rx_err
read_command_result(pool *p, size_t task)
{
    rx__slot *s = &p->res->slots[task];
    char path[PATH_MAX];
    struct stat st;
    size_t got = 0;
    char *buf;
    int fd;

    (void)snprintf(path, sizeof(path), "%s/t%zu.result", p->res->spool_dir, task);
    /* O_NONBLOCK: a FIFO there must not hang us; O_NOFOLLOW: nor may a symlink redirect us. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT)
        return RX_OK; /* no result written: an empty value */
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        (void)unlink(path);
        s->state = RX_TASK_ERROR;
        return rx__slot_set_error(s, "$RXJOB_RESULT is not a regular file");
    }
    if ((uint64_t)st.st_size > RX_RESULT_MAX_BYTES) {
        close(fd);
        (void)unlink(path);
        s->state = RX_TASK_ERROR;
        return rx__slot_set_error(s, "result of %lld bytes is over the limit of %zu bytes",
                                  (long long)st.st_size, RX_RESULT_MAX_BYTES);
    }
    buf = rx__malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return RX_ENOMEM;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    close(fd);
    (void)unlink(path);
    rx__free(s->value);
    s->value = buf;
    s->value_len = got;
    return RX_OK;
}

static rx_err
finish_command(pool *p, unit *u)
{
    size_t task = u->task;
    rx__slot *s = &p->res->slots[task];
    char text[128];
    int wstatus = 0;
    rx_err err;

    err = rx__proc_reap(&u->proc, &wstatus);
    u->active = 0;
    p->n_active--;
    p->throttled = 0; /* a process slot is free again */
    if (err != RX_OK) {
        pool_error(p, "waitpid", errno);
        return err;
    }
    s->end_ms = rx__now_ms();
    {
        off_t end = lseek(u->cmd_out_fd, 0, SEEK_END);

        s->out_len = end < 0 || (uint64_t)end < s->out_off ? 0 : (uint64_t)end - s->out_off;
    }
    rx__wait_status_text(wstatus, text, sizeof(text));
    if (WIFEXITED(wstatus))
        s->exit_status = WEXITSTATUS(wstatus);
    else if (WIFSIGNALED(wstatus))
        s->signal = WTERMSIG(wstatus);
    err = RX_OK;
    if (u->kill == KILL_TIMEOUT) {
        s->state = RX_TASK_TIMEOUT;
        err = rx__slot_set_error(s, "time limit of %g s exceeded (%s)",
                                 (double)p->job->timeout_ms / 1000.0, text);
    } else if (u->kill == KILL_STOP) {
        s->state = RX_TASK_STOPPED;
        err = rx__slot_set_error(s, "stopped: the job stopped after task %lld failed (%s)",
                                 (long long)p->failed_task, text);
    } else if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) {
        s->state = RX_TASK_OK;
        err = read_command_result(p, task);
    } else {
        s->state = WIFSIGNALED(wstatus) ? RX_TASK_SIGNALED : RX_TASK_EXIT;
        err = rx__slot_set_error(s, "%s", text);
    }
    if (err != RX_OK)
        return err;
    resolve(p, task);
    return RX_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Function workers
 * ------------------------------------------------------------------------------------------- */

static int
write_all_v(int fd, struct iovec *iov, int iovcnt)
{
    while (iovcnt > 0) {
        ssize_t n = writev(fd, iov, iovcnt);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/*
 * Signals in a worker are as after exec: handlers back to the default, ignored ones stay
 * ignored, nothing blocked. A handler inherited from the caller (a test framework's SIGSEGV
 * handler that longjmps, say) would otherwise run the caller's code in the worker after a crash.
 * SIGTERM is always the default, so a time limit or a stop can end the worker, and so is
 * SIGCHLD, so that a task's own children (system(3)) can be waited for.
 */
static void
reset_signals(void)
{
    sigset_t none;

    for (int sig = 1; sig < SIGRTMIN; sig++) {
        struct sigaction sa;

        if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) != 0)
            continue;
        if (sa.sa_handler != SIG_IGN || sig == SIGTERM || sig == SIGCHLD) {
            memset(&sa, 0, sizeof(sa));
            sa.sa_handler = SIG_DFL;
            (void)sigaction(sig, &sa, NULL);
        }
    }
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
}

/* The worker process: run the chunk's tasks in a row, report each, exit. Never returns. */
static void
worker_main(const pool *p, unsigned w, const size_t *chunk, size_t chunk_n, int wfd, int out_fd)
{
    const rx__pool_job *job = p->job;
    shm_worker *me = &p->shm->w[w];
    int null_fd = open("/dev/null", O_RDONLY);
    uint64_t last_off = 0;

    /* out_fd and wfd are >= 3 (rx__fd_above_stdio), so these dup2s clobber neither. */
    if (null_fd >= 0 && null_fd != 0) {
        (void)dup2(null_fd, 0);
        close(null_fd);
    }
    /* out_fd stays open: it shares fd 1's file offset, and a task that closes fd 1 cannot make
     * the next task's output range wrong. */
    reset_signals();

    for (size_t k = 0; k < chunk_n; k++) {
        size_t i = chunk[k];
        rx_task task = {0};
        msg_done m;
        struct iovec iov[3];
        off_t off;

        if (atomic_load(&p->shm->stop))
            break;
        task.index = i;
        if (job->args != NULL) {
            task.arg = job->args[i].data;
            task.arg_len = job->args[i].len;
        }
        /* A task may have closed or moved fds 1 and 2: each task starts with them on the
         * worker's output file again. */
        if (dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
            _exit(126);
        memset(&m, 0, sizeof(m));
        m.index = i;
        m.start_ms = rx__now_ms();
        m.out_off = last_off; /* where the previous task's output ended: one lseek per task */
        atomic_store(&me->start_ms, m.start_ms);
        atomic_store(&me->out_off, m.out_off);
        atomic_store(&me->task, (int64_t)i);

        m.rc = job->work->function(&task);

        (void)fflush(stdout);
        (void)fflush(stderr);
        off = lseek(out_fd, 0, SEEK_CUR);
        m.out_end = off < 0 || (uint64_t)off < m.out_off ? m.out_off : (uint64_t)off;
        last_off = m.out_end;
        m.end_ms = rx__now_ms();
        /* The function is over: moving its result is not part of its time limit. */
        atomic_store(&me->reporting, 1);
        if (m.rc != 0 && !job->continue_on_failure)
            atomic_store(&p->shm->stop, 1); /* before the report: no task starts after this */
        if (m.rc == 0) {
            m.value_len = (uint32_t)task.value_len;
        } else if (task.error != NULL) {
            m.err_len = (uint32_t)strlen(task.error);
        }
        iov[0].iov_base = &m;
        iov[0].iov_len = sizeof(m);
        iov[1].iov_base = m.rc == 0 && task.value ? task.value : (void *)"";
        iov[1].iov_len = m.value_len;
        iov[2].iov_base = task.error ? task.error : (void *)"";
        iov[2].iov_len = m.err_len;
        if (write_all_v(wfd, iov, 3) != 0)
            _exit(125); /* the parent is gone */
        atomic_store(&me->task, -1);
        atomic_store(&me->reporting, 0);
        rx__task_reset(&task);
    }
    _exit(0);
}

static rx_err
start_worker(pool *p, unit *u, unsigned w)
{
    size_t chunk = p->job->chunk;
    char out_path[PATH_MAX];
    char name[64];
    int fds[2] = {-1, -1};
    int out_fd = -1;
    pid_t pid;
    rx_err err;

    u->chunk_n = 0;
    while (u->chunk_n < chunk && (p->n_requeue > 0 || p->next_fresh < p->res->n)) {
        if (p->n_requeue > 0)
            u->chunk[u->chunk_n++] = p->requeue[--p->n_requeue];
        else
            u->chunk[u->chunk_n++] = p->next_fresh++;
    }
    (void)snprintf(name, sizeof(name), "w%u.out", p->n_worker_files++);
    out_fd = spool_open(p->res, name, out_path, sizeof(out_path));
    if (out_fd < 0) {
        pool_error(p, "create worker output", errno);
        err = RX_ESYSTEM;
        goto fail;
    }
    err = rx__results_add_file(p->res, out_path, &u->out_file);
    if (err != RX_OK)
        goto fail;
    if (pipe2(fds, O_CLOEXEC) != 0) {
        pool_error(p, "pipe", errno);
        err = RX_ESYSTEM;
        goto fail;
    }
    fds[0] = rx__fd_above_stdio(fds[0]);
    fds[1] = rx__fd_above_stdio(fds[1]);
    if (fds[0] < 0 || fds[1] < 0) {
        pool_error(p, "pipe", errno);
        err = RX_ESYSTEM;
        goto fail;
    }
    atomic_store(&p->shm->w[w].task, -1);
    atomic_store(&p->shm->w[w].reporting, 0);
    (void)fflush(stdout); /* or the worker would write the caller's buffered output */
    (void)fflush(stderr);
    pid = rx__fork_worker(&u->proc);
    if (pid < 0 && is_transient(errno) && p->n_active > 0) {
        p->throttled = 1; /* the fail path puts the chunk back */
        err = RX_OK;
        goto fail;
    }
    if (pid < 0) {
        pool_error(p, "fork", errno);
        err = RX_ESYSTEM;
        goto fail;
    }
    if (pid == 0) {
        close(fds[0]);
        worker_main(p, w, u->chunk, u->chunk_n, fds[1], out_fd);
    }
    close(fds[1]);
    close(out_fd);
    (void)fcntl(fds[0], F_SETFL, O_NONBLOCK);
    u->pipe_fd = fds[0];
    u->active = 1;
    u->is_worker = 1;
    u->kill = KILL_NONE;
    u->killed_task = -1;
    u->sigkill_at_ms = 0;
    u->rlen = 0;
    p->n_active++;
    for (size_t k = 0; k < u->chunk_n; k++) /* their output lives in this worker's file */
        p->res->slots[u->chunk[k]].out_file = u->out_file;
    return RX_OK;
fail:
    /* Put the tasks back so that nothing is lost if the caller goes on. */
    while (u->chunk_n > 0)
        p->requeue[p->n_requeue++] = u->chunk[--u->chunk_n];
    if (out_fd >= 0)
        close(out_fd);
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    return err;
}

/* Handle the complete reports in the worker's buffer. */
static rx_err
parse_reports(pool *p, unit *u)
{
    size_t pos = 0;
    rx_err err = RX_OK;

    while (u->rlen - pos >= sizeof(msg_done)) {
        msg_done m;
        rx__slot *s;
        const char *body;

        memcpy(&m, u->rbuf + pos, sizeof(m));
        if (u->rlen - pos - sizeof(m) < (size_t)m.value_len + m.err_len)
            break;
        body = (const char *)u->rbuf + pos + sizeof(m);
        pos += sizeof(m) + (size_t)m.value_len + m.err_len;
        if (m.index >= p->res->n || p->resolved[m.index])
            continue; /* cannot happen with our workers; never trust it blindly */
        s = &p->res->slots[m.index];
        s->start_ms = m.start_ms;
        s->end_ms = m.end_ms;
        s->out_off = m.out_off;
        s->out_len = m.out_end >= m.out_off ? m.out_end - m.out_off : 0;
        if (m.rc == 0) {
            s->state = RX_TASK_OK;
            s->value = rx__memdup(body, m.value_len);
            s->value_len = m.value_len;
            if (s->value == NULL)
                err = RX_ENOMEM;
        } else {
            s->state = RX_TASK_ERROR;
            if (m.err_len > 0)
                err = rx__slot_set_error(s, "%.*s", (int)m.err_len, body + m.value_len);
            else
                err = rx__slot_set_error(s, "function returned %d", (int)m.rc);
        }
        if (err != RX_OK)
            break;
        resolve(p, (size_t)m.index);
    }
    if (pos > 0) {
        memmove(u->rbuf, u->rbuf + pos, u->rlen - pos);
        u->rlen -= pos;
    }
    return err;
}

/* Read what the worker's pipe holds now (a bounded amount unless it is gone), and handle it. */
static rx_err
drain_worker(pool *p, unit *u, int until_empty)
{
    for (int round = 0; until_empty || round < 16; round++) {
        ssize_t n;

        if (u->rcap - u->rlen < READ_PIECE_BYTES) {
            size_t cap = u->rcap ? u->rcap * 2 : 2 * READ_PIECE_BYTES;
            unsigned char *b = rx__realloc(u->rbuf, cap);

            if (b == NULL)
                return RX_ENOMEM;
            u->rbuf = b;
            u->rcap = cap;
        }
        n = read(u->pipe_fd, u->rbuf + u->rlen, u->rcap - u->rlen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EAGAIN: nothing more now; 0: every writer is gone */
        u->rlen += (size_t)n;
        if (parse_reports(p, u) != RX_OK)
            return RX_ENOMEM;
    }
    return RX_OK;
}

static rx_err
finish_worker(pool *p, unit *u, unsigned w)
{
    int64_t cur;
    char text[128];
    int wstatus = 0;
    int requeued_cur = 0;
    rx_err err;

    err = drain_worker(p, u, 1); /* every report it made is in the pipe */
    cur = atomic_load(&p->shm->w[w].task);
    if (rx__proc_reap(&u->proc, &wstatus) != RX_OK) {
        pool_error(p, "waitpid", errno);
        err = RX_ESYSTEM;
    }
    close(u->pipe_fd);
    u->pipe_fd = -1;
    u->active = 0;
    p->n_active--;
    p->throttled = 0; /* a process slot is free again */
    if (err != RX_OK)
        return err;
    rx__wait_status_text(wstatus, text, sizeof(text));

    /* The task it was on, if it had not reported, ended with the worker. */
    if (cur >= 0 && (size_t)cur < p->res->n && !p->resolved[cur]) {
        rx__slot *s = &p->res->slots[cur];
        uint64_t out_off = atomic_load(&p->shm->w[w].out_off);
        uint64_t end = file_size(p->res->files[u->out_file]);

        s->start_ms = atomic_load(&p->shm->w[w].start_ms);
        s->end_ms = rx__now_ms();
        s->out_off = out_off;
        s->out_len = end >= out_off ? end - out_off : 0;
        if (WIFSIGNALED(wstatus))
            s->signal = WTERMSIG(wstatus); /* exit_status stays -1: a function is no command */
        if (atomic_load(&p->shm->w[w].reporting)) {
            s->state = RX_TASK_LOST;
            err = rx__slot_set_error(s,
                                     "the worker process ended (%s) while sending the "
                                     "task's result",
                                     text);
        } else if (u->kill == KILL_TIMEOUT && u->killed_task == cur) {
            s->state = RX_TASK_TIMEOUT;
            err = rx__slot_set_error(s, "time limit of %g s exceeded (%s)",
                                     (double)p->job->timeout_ms / 1000.0, text);
        } else if (u->kill == KILL_STOP) {
            s->state = RX_TASK_STOPPED;
            err = rx__slot_set_error(s, "stopped: the job stopped after task %lld failed (%s)",
                                     (long long)p->failed_task, text);
        } else if (u->kill == KILL_TIMEOUT) {
            /* It had just started when its predecessor's limit fired: it never really ran. */
            s->start_ms = 0;
            s->out_len = 0;
            requeued_cur = 1;
        } else if (WIFSIGNALED(wstatus)) {
            s->state = RX_TASK_SIGNALED;
            err = rx__slot_set_error(s, "%s", text);
        } else {
            s->state = RX_TASK_LOST;
            err = rx__slot_set_error(s,
                                     "the worker process ended (%s) before the function "
                                     "returned (did it call exit or close the report pipe?)",
                                     text);
        }
        if (err != RX_OK)
            return err;
        if (!requeued_cur)
            resolve(p, (size_t)cur);
    }
    /* Tasks of its chunk that it never started: run them elsewhere, or never. */
    for (size_t k = 0; k < u->chunk_n; k++) {
        size_t i = u->chunk[k];

        if (p->resolved[i])
            continue;
        if (p->stopping)
            resolve_not_run(p, i);
        else
            p->requeue[p->n_requeue++] = i;
    }
    return RX_OK;
}

/* ---------------------------------------------------------------------------------------------
 * The loop
 * ------------------------------------------------------------------------------------------- */

static int
has_work(const pool *p)
{
    return !p->stopping && (p->n_requeue > 0 || p->next_fresh < p->res->n);
}

static rx_err
start_units(pool *p)
{
    int is_function = p->job->work->kind == RX_WORK_FUNCTION;

    for (unsigned k = 0; k < p->n_units && has_work(p) && !p->throttled; k++) {
        unit *u = &p->units[k];
        rx_err err;

        if (u->active)
            continue;
        if (is_function) {
            err = start_worker(p, u, k);
        } else {
            size_t task = p->n_requeue > 0 ? p->requeue[--p->n_requeue] : p->next_fresh++;

            err = start_command(p, u, task);
        }
        if (err != RX_OK)
            return err;
    }
    return RX_OK;
}

/* Time limits and SIGKILL escalation; returns the poll timeout in ms (-1 = none). */
static int
check_timers(pool *p)
{
    int64_t now = rx__now_ms();
    int64_t next = -1;
    int timeout;

    for (unsigned k = 0; k < p->n_units; k++) {
        unit *u = &p->units[k];
        int64_t due = 0;

        if (!u->active)
            continue;
        if (u->kill != KILL_NONE) {
            if (u->sigkill_at_ms > 0 && now >= u->sigkill_at_ms) {
                (void)rx__proc_signal_group(&u->proc, SIGKILL);
                u->sigkill_at_ms = 0;
            }
            due = u->sigkill_at_ms;
        } else if (p->job->timeout_ms > 0) {
            if (u->is_worker) {
                int64_t cur = atomic_load(&p->shm->w[k].task);
                int64_t start = atomic_load(&p->shm->w[k].start_ms);
                int reporting = atomic_load(&p->shm->w[k].reporting);

                if (cur >= 0 && !reporting && now >= start + p->job->timeout_ms) {
                    u->killed_task = cur;
                    unit_kill(p, u, KILL_TIMEOUT);
                    due = u->sigkill_at_ms;
                } else {
                    due = cur >= 0 ? start + p->job->timeout_ms : now + POLL_TIMELIMIT_MS;
                    if (due > now + POLL_TIMELIMIT_MS)
                        due = now + POLL_TIMELIMIT_MS; /* a new task may start unseen */
                }
            } else if (now >= u->deadline_ms) {
                unit_kill(p, u, KILL_TIMEOUT);
                due = u->sigkill_at_ms;
            } else {
                due = u->deadline_ms;
            }
        }
        if (due > 0 && (next < 0 || due < next))
            next = due;
    }
    for (unsigned k = 0; k < p->n_units; k++) {
        /* pidfds exist on Linux >= 5.3; without one, the exit is polled for. */
        if (p->units[k].active && p->units[k].proc.pidfd < 0 &&
            (next < 0 || next > now + POLL_NO_PIDFD_MS))
            next = now + POLL_NO_PIDFD_MS;
    }
    if (next < 0)
        return -1;
    /* Long limits are re-checked once a minute rather than overflowing poll's int. */
    timeout = next <= now ? 0 : next - now > POLL_MAX_MS ? POLL_MAX_MS : (int)(next - now);
    return timeout;
}

static rx_err
poll_once(pool *p, struct pollfd *pfds, unsigned *owner, unsigned char *exited)
{
    int timeout = check_timers(p);
    nfds_t n = 0;
    int rc;

    memset(exited, 0, p->n_units);
    for (unsigned k = 0; k < p->n_units; k++) {
        unit *u = &p->units[k];

        if (!u->active)
            continue;
        if (u->proc.pidfd >= 0) {
            pfds[n].fd = u->proc.pidfd;
            pfds[n].events = POLLIN;
            pfds[n].revents = 0;
            owner[n++] = k;
        }
        if (u->is_worker) {
            pfds[n].fd = u->pipe_fd;
            pfds[n].events = POLLIN;
            pfds[n].revents = 0;
            owner[n++] = k;
        }
    }
    rc = poll(pfds, n, timeout);
    if (rc < 0 && errno != EINTR) {
        pool_error(p, "poll", errno);
        return RX_ESYSTEM;
    }
    for (nfds_t i = 0; rc > 0 && i < n; i++) {
        unit *u = &p->units[owner[i]];

        if (pfds[i].revents == 0 || !u->active)
            continue;
        if (u->is_worker && pfds[i].fd == u->pipe_fd) {
            if (drain_worker(p, u, 0) != RX_OK)
                return RX_ENOMEM;
        } else {
            exited[owner[i]] = 1;
        }
    }
    /* Exits: a pidfd said so, or (without pidfds) waitid does. */
    for (unsigned k = 0; k < p->n_units; k++) {
        unit *u = &p->units[k];
        rx_err err;

        if (!u->active || !(exited[k] || (u->proc.pidfd < 0 && rx__proc_exited(&u->proc))))
            continue;
        err = u->is_worker ? finish_worker(p, u, k) : finish_command(p, u);
        if (err != RX_OK)
            return err;
    }
    return RX_OK;
}

/* Stop and reap everything still running; used when the job cannot go on. */
static void
abort_units(pool *p)
{
    for (unsigned k = 0; k < p->n_units; k++) {
        unit *u = &p->units[k];
        int wstatus;

        if (!u->active)
            continue;
        (void)rx__proc_reap(&u->proc, &wstatus); /* SIGKILLs the group first */
        if (u->is_worker && u->pipe_fd >= 0)
            close(u->pipe_fd);
        u->active = 0;
    }
    p->n_active = 0;
}

/*
 * Tasks per worker: the caller's choice, else n / (4 x slots), so each worker gets about four
 * chunks (balance for uneven tasks) and a fork is paid per chunk, not per task. Capped by the
 * task count, and the automatic one by CHUNK_AUTO_MAX: each fork copies the caller's page
 * tables, so fewer forks matter most for big jobs.
 */
static unsigned
auto_chunk(const rx__pool_job *job, unsigned slots)
{
    size_t per = job->n_tasks / ((size_t)slots * 4);

    if (job->chunk > 0)
        return job->chunk > job->n_tasks ? (unsigned)job->n_tasks : job->chunk;
    if (per < 1)
        per = 1;
    return per > CHUNK_AUTO_MAX ? CHUNK_AUTO_MAX : (unsigned)per;
}

static rx_err
write_stdin_file(pool *p)
{
    const rx_work *w = p->job->work;
    char path[PATH_MAX];
    const char *data = w->stdin_data;
    size_t left = w->stdin_len;
    int fd;

    if (w->kind != RX_WORK_COMMAND || w->stdin_data == NULL)
        return RX_OK;
    fd = spool_open(p->res, "stdin", path, sizeof(path));
    if (fd < 0) {
        pool_error(p, "create stdin file", errno);
        return RX_ESYSTEM;
    }
    while (left > 0) {
        ssize_t n = write(fd, data, left);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            pool_error(p, "write stdin file", errno);
            close(fd);
            return RX_ESYSTEM;
        }
        data += n;
        left -= (size_t)n;
    }
    close(fd);
    p->stdin_path = rx__strdup(path);
    return p->stdin_path ? RX_OK : RX_ENOMEM;
}

static void
pool_free(pool *p)
{
    for (unsigned k = 0; p->units != NULL && k < p->n_units; k++) {
        if (p->units[k].cmd_out_fd >= 0)
            close(p->units[k].cmd_out_fd);
        rx__free(p->units[k].chunk);
        rx__free(p->units[k].rbuf);
    }
    rx__free(p->units);
    rx__free(p->requeue);
    rx__free(p->resolved);
    rx__free(p->base_env);
    rx__free(p->stdin_path);
    if (p->shm != NULL)
        (void)munmap(p->shm, p->shm_len);
}

static rx_err
pool_run(const rx__pool_job *job, rx_results **out_results, char *errbuf, size_t errlen)
{
    rx__pool_job eff = *job;
    pool p;
    struct pollfd *pfds = NULL;
    unsigned *owner = NULL;
    unsigned char *exited = NULL;
    rx_err err;

    memset(&p, 0, sizeof(p));
    p.job = &eff;
    p.errbuf = errbuf;
    p.errlen = errlen;
    p.failed_task = -1;
    if (eff.slots == 0)
        eff.slots = 1;
    if ((size_t)eff.slots > eff.n_tasks)
        eff.slots = (unsigned)eff.n_tasks;
    eff.chunk = auto_chunk(&eff, eff.slots);
    if (eff.grace_ms <= 0)
        eff.grace_ms = RX__KILL_GRACE_MS;

    p.res = rx__results_new(eff.n_tasks);
    p.resolved = rx__calloc(eff.n_tasks, 1);
    p.requeue = rx__calloc(eff.n_tasks, sizeof(*p.requeue));
    p.units = rx__calloc(eff.slots, sizeof(*p.units));
    pfds = rx__calloc((size_t)eff.slots * 2, sizeof(*pfds));
    owner = rx__calloc((size_t)eff.slots * 2, sizeof(*owner));
    exited = rx__calloc(eff.slots, 1);
    if (p.res == NULL || p.resolved == NULL || p.requeue == NULL || p.units == NULL ||
        pfds == NULL || owner == NULL || exited == NULL) {
        err = RX_ENOMEM;
        goto fail;
    }
    p.n_units = eff.slots;
    for (unsigned k = 0; k < p.n_units; k++) {
        p.units[k].pipe_fd = -1;
        p.units[k].cmd_out_fd = -1;
        p.units[k].proc.pidfd = -1;
        if (eff.work->kind == RX_WORK_FUNCTION) {
            p.units[k].chunk = rx__calloc(eff.chunk, sizeof(size_t)); /* chunk <= n_tasks */
            if (p.units[k].chunk == NULL) {
                err = RX_ENOMEM;
                goto fail;
            }
        }
    }
    if (eff.work->kind == RX_WORK_FUNCTION) {
        p.shm_len = sizeof(shm_page) + (size_t)eff.slots * sizeof(shm_worker);
        p.shm = mmap(NULL, p.shm_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p.shm == MAP_FAILED) {
            p.shm = NULL;
            pool_error(&p, "mmap", errno);
            err = RX_ESYSTEM;
            goto fail;
        }
        atomic_store(&p.shm->stop, 0);
    } else {
        err = build_base_env(&p);
        if (err != RX_OK)
            goto fail;
    }
    err = make_spool(p.res, errbuf, errlen);
    if (err == RX_OK)
        err = write_stdin_file(&p);
    if (err != RX_OK)
        goto fail;

    while (p.n_resolved < p.res->n || p.n_active > 0) {
        err = start_units(&p);
        if (err != RX_OK)
            goto fail;
        report_ready(&p);
        if (p.n_active == 0) {
            if (p.n_resolved < p.res->n && !has_work(&p)) {
                (void)snprintf(errbuf, errlen, "exec: internal error: tasks left unresolved");
                err = RX_ESYSTEM;
                goto fail;
            }
            continue;
        }
        err = poll_once(&p, pfds, owner, exited);
        if (err != RX_OK)
            goto fail;
    }
    report_ready(&p);
    rx__results_settle(p.res);
    *out_results = p.res;
    p.res = NULL;
    err = (*out_results)->status == RX_JOB_FINISHED ? RX_OK : RX_EJOBFAILED;
    pool_free(&p);
    rx__free(pfds);
    rx__free(owner);
    rx__free(exited);
    return err;

fail:
    abort_units(&p);
    if (err == RX_ENOMEM && errbuf[0] == '\0')
        (void)snprintf(errbuf, errlen, "exec: out of memory");
    rx_results_free(p.res);
    pool_free(&p);
    rx__free(pfds);
    rx__free(owner);
    rx__free(exited);
    return err;
}

rx_err
rx__pool_run(const rx__pool_job *job, rx_results **out_results, char *errbuf, size_t errlen)
{
    rx_err err;

    rx__sigchld_hold(); /* exit statuses must not be discarded while our children run */
    err = pool_run(job, out_results, errbuf, errlen);
    rx__sigchld_release();
    return err;
}

/* ---------------------------------------------------------------------------------------------
 * In the caller: the local context's functions
 * ------------------------------------------------------------------------------------------- */

/* A copy of fd (>= 3) to put back after the call; -2 when fd is closed (a caller may run with
 * stdout closed); -1 on failure. */
static int
save_fd(int fd)
{
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);

    if (copy < 0 && errno == EBADF)
        return -2;
    return copy;
}

/* Put fd back as it was. A task that closed our saved copy leaves fd on /dev/null rather than
 * on the spool, and the call fails. */
static int
restore_fd(int saved, int fd)
{
    int rc = 0;

    if (saved == -2) {
        close(fd);
    } else if (saved >= 0) {
        if (dup2(saved, fd) < 0) {
            int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

            if (null_fd >= 0 && null_fd != fd) {
                (void)dup2(null_fd, fd);
                close(null_fd);
            }
            rc = -1;
        }
        close(saved);
    }
    return rc;
}

/* Call the function for task i with fds 1 and 2 on out_fd; fill its slot. */
static rx_err
call_in_process(const rx__pool_job *job, rx_results *res, size_t i, int out_fd, int32_t file,
                char *errbuf, size_t errlen)
{
    rx__slot *s = &res->slots[i];
    rx_task task = {0};
    int saved1, saved2;
    rx_err err = RX_OK;
    off_t off;
    int rc;

    task.index = i;
    if (job->args != NULL) {
        task.arg = job->args[i].data;
        task.arg_len = job->args[i].len;
    }
    (void)fflush(stdout);
    (void)fflush(stderr);
    saved1 = save_fd(1);
    saved2 = save_fd(2);
    if (saved1 == -1 || saved2 == -1 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0) {
        (void)snprintf(errbuf, errlen, "exec: redirect output failed: %s", strerror(errno));
        err = RX_ESYSTEM;
        goto restore;
    }
    off = lseek(out_fd, 0, SEEK_CUR);
    s->out_file = file;
    s->out_off = off < 0 ? 0 : (uint64_t)off;
    s->start_ms = rx__now_ms();
    rc = job->work->function(&task);
    (void)fflush(stdout);
    (void)fflush(stderr);
    s->end_ms = rx__now_ms();
    off = lseek(out_fd, 0, SEEK_CUR);
    s->out_len = off < 0 || (uint64_t)off < s->out_off ? 0 : (uint64_t)off - s->out_off;
    if (rc == 0) {
        s->state = RX_TASK_OK;
        s->value = task.value ? task.value : rx__memdup("", 0);
        s->value_len = task.value_len;
        task.value = NULL;
        if (s->value == NULL)
            err = RX_ENOMEM;
    } else {
        s->state = RX_TASK_ERROR;
        if (task.error != NULL)
            err = rx__slot_set_error(s, "%s", task.error);
        else
            err = rx__slot_set_error(s, "function returned %d", rc);
    }
restore:
    if ((restore_fd(saved1, 1) != 0 || restore_fd(saved2, 2) != 0) && err == RX_OK) {
        (void)snprintf(errbuf, errlen,
                       "exec: task %zu closed the caller's saved stdout or stderr; they now go "
                       "to /dev/null",
                       i);
        err = RX_ESYSTEM;
    }
    rx__task_reset(&task);
    return err;
}

rx_err
rx__run_in_process(const rx__pool_job *job, rx_results **out_results, char *errbuf, size_t errlen)
{
    rx_results *res = NULL;
    char out_path[PATH_MAX];
    int32_t file = -1;
    int out_fd = -1;
    int64_t failed = -1;
    rx_err err;

    res = rx__results_new(job->n_tasks);
    if (res == NULL)
        return RX_ENOMEM;
    err = make_spool(res, errbuf, errlen);
    if (err != RX_OK)
        goto fail;
    out_fd = spool_open(res, "local.out", out_path, sizeof(out_path));
    if (out_fd < 0) {
        (void)snprintf(errbuf, errlen, "exec: create task output failed: %s", strerror(errno));
        err = RX_ESYSTEM;
        goto fail;
    }
    err = rx__results_add_file(res, out_path, &file);
    if (err != RX_OK)
        goto fail;

    for (size_t i = 0; i < job->n_tasks; i++) {
        rx__slot *s = &res->slots[i];

        if (failed >= 0) {
            s->state = RX_TASK_NOT_RUN;
            err = rx__slot_set_error(s,
                                     "not run: the job stopped after task %lld failed "
                                     "(continue_on_failure is false)",
                                     (long long)failed);
        } else {
            err = call_in_process(job, res, i, out_fd, file, errbuf, errlen);
            if (s->state != RX_TASK_OK && !job->continue_on_failure)
                failed = (int64_t)i;
        }
        if (err != RX_OK)
            goto fail;
        if (job->console_output) {
            if (printf("==> task %zu <==\n", i) < 0 || rx_results_write_output(res, i, stdout))
                rx__log(RX_LOG_WARN, "exec: writing the output of task %zu failed, ignoring", i);
            (void)fflush(stdout);
        }
        if (job->callback != NULL)
            job->callback(res, i, job->callback_user);
    }
    close(out_fd);
    rx__results_settle(res);
    *out_results = res;
    return res->status == RX_JOB_FINISHED ? RX_OK : RX_EJOBFAILED;

fail:
    if (out_fd >= 0)
        close(out_fd);
    rx_results_free(res);
    return err;
}
