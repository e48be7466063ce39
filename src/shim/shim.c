/*
 * shim.c - rxjob-shim, the task supervisor ("shim"): one process per task, so that tasks outlive
 * the daemon. Spawned and watched by the local executor (src/server/exec_local.c), run by Slurm
 * array tasks (src/server/exec_slurm.c). See exec_local.h and docs/engine.md.
 *
 *     rxjob-shim [--shim] JOB_DIR INDEX N_TASKS TIMEOUT_MS GRACE_MS HAS_ARGS
 *                [OUTPUT_BYTES RESULT_BYTES [COUNT STOP_ON_FAILURE]]
 *
 * With COUNT (function work only, no output cap), it runs the chunk of tasks INDEX ..
 * INDEX + COUNT - 1 with ONE exec of the program (rx_init loops over them, saying "s i" and
 * "e i status" on a pipe, see run_chunk and src/client/registry.c) and writes one exit record
 * for the run (spool.h spool_run_exit).
 *
 * It is a program of its own, linked with nothing but libc and a few of our objects (spawn,
 * spool, work encoding), because one is exec'd per task: the whole rxjobd with its shared
 * libraries cost about 5 ms and 380 page faults per task.
 *
 * Why a supervisor per task: the daemon may die (kill -9, a crash, an upgrade) while tasks run.
 * A task's parent must reap it to learn its exit status, enforce its time limit and stop it on
 * cancel; if that parent were the daemon, all of that would die with it. The shim is that
 * parent instead. It lives in a session of its own (setsid), so neither the daemon's death nor
 * a signal to the daemon's process group or terminal reaches it, and it writes how the task
 * ended to a file (the exit record) that any later daemon can read.
 *
 * The shim does little and allocates little: it reads the job's `work` file, its own argument,
 * starts the task with src/exec/spawn.c (own process group, output to t<i>.out), then waits on
 * two file descriptors: the task's pidfd and a signalfd for the cancel signals. Time limits run
 * on CLOCK_MONOTONIC in that same poll loop. No signal handler is installed anywhere.
 *
 * Output cap (OUTPUT_BYTES > 0): the task writes into a pipe instead of its file, and the same
 * poll loop moves the pipe's bytes to t<i>.out with splice(2) up to the cap, then discards the
 * rest (so the task never blocks on a full pipe), and appends one marker line when the output
 * ends (OUTPUT_CUT_MARKER). Without a cap the task writes straight to its file.
 */
#define _GNU_SOURCE
#include "core/internal.h"
#include "exec/argv.h"
#include "exec/spawn.h"
#include "server/engine.h"
#include "server/exec_local.h"
#include "store/spool.h"
#include "store/work.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define SHIM_GO_FD         3
#define WORK_MAX_BYTES     ((size_t)64 * 1024 * 1024) /* argv + env + stdin limits, with room */
#define ERROR_MAX_BYTES    SPOOL_ERROR_MAX_BYTES
#define POLL_NO_PIDFD_MS   20
#define SHIM_EXIT_BAD_ARGS 2
#define RELAY_STEP         ((size_t)1 << 20) /* bytes per splice(2) */
#define RELAY_LINGER_MS    500  /* after the task ended: wait this long for more output, at most */
#define RELAY_FINISH_MS    5000 /* after the task ended: drain the pipe this long in all, at most */
#define ACK_WAIT_MS        60000 /* for the daemon's "k" after "e", at most; then fsync anyway */

/* The line appended to a task's output where the cap cut it: the cap, why, what was lost. */
#define OUTPUT_CUT_MARKER \
    "\n[rxjob: output cut at %" PRIu64 " bytes: %s; %" PRIu64 " bytes discarded]\n"

/* The signals that mean "stop the task": blocked from the shim's first instruction (the daemon
 * spawns it with them blocked), read through a signalfd. */
static void
cancel_sigset(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGUSR1);
}

enum stop_reason { STOP_NONE = 0, STOP_TIMEOUT, STOP_CANCEL };

/* The output relay of a task with an output cap. */
typedef struct relay {
    int in_fd;          /* the pipe's read end (non-blocking), or -1 once it reached end-of-file */
    int out_fd;         /* t<i>.out */
    uint64_t cap;       /* bytes kept */
    uint64_t kept;      /* bytes written to t<i>.out */
    uint64_t discarded; /* bytes read and dropped */
    int no_splice;      /* splice(2) refused: read and write instead */
    int write_errno;    /* writing t<i>.out failed: everything after is discarded */
} relay;

typedef struct shim {
    const char *job_dir;
    uint64_t idx;
    uint64_t n_tasks;
    int64_t timeout_ms;
    int64_t grace_ms;
    int has_args;
    uint64_t output_bytes; /* 0 = no cap */
    uint64_t result_bytes;
    int under_slurm; /* run by Slurm (exec_slurm.c): its pids mean nothing to the daemon's host */
    int loaded;      /* prepare_task succeeded */
    int went;        /* "go" came: the task's files are this supervisor's to remove */
    int sfd;
    uint64_t count;      /* COUNT: a chunk of tasks (run_chunk, run_command_chunk); 0 = one */
    int stop_on_failure; /* chunk: the job stops at a failure (continue_on_failure off) */
    int canceled;        /* a cancel signal came (watch_task): a chunk starts no more tasks */
    spool_run_exit run;  /* chunk: the run's record */
    store_work work;
    void *arg;
    size_t arg_len;
    spool_exit rec;
    char out_path[PATH_MAX];
    char result_path[PATH_MAX];
    char error_path[PATH_MAX];
    char arg_path[PATH_MAX];
    void *work_blob; /* the encoded work sent with the task (take_work), until decoded; owned */
    size_t work_blob_len;
} shim;

static double
now_utc_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
parse_u64_arg(const char *s, int64_t max, uint64_t *out)
{
    int64_t v;

    if (rx__parse_i64(s, 0, max, &v) != RX_OK)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int set_error(shim *sh, const char *fmt, ...) RX_PRINTF(2, 3);

static int
set_error(shim *sh, const char *fmt, ...)
{
    char buf[ERROR_MAX_BYTES];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    rx__free(sh->rec.error);
    sh->rec.error = rx__strdup(buf);
    return -1;
}

/* The daemon runs with umask 077; its tasks get the user's umask back (ENGINE_TASK_UMASK_ENV),
 * and the variable is not theirs to see. The supervisor's own files have explicit 0600 modes. */
static void
apply_task_umask(void)
{
    const char *v = getenv(ENGINE_TASK_UMASK_ENV);
    char *end = NULL;
    unsigned long mask;

    if (v == NULL)
        return;
    errno = 0;
    mask = strtoul(v, &end, 8);
    if (errno == 0 && end != v && *end == '\0' && mask <= 0777)
        (void)umask((mode_t)mask);
    (void)unsetenv(ENGINE_TASK_UMASK_ENV);
}

/* 1 if a cancel signal is pending (read without blocking). */
static int
cancel_pending(const shim *sh)
{
    struct signalfd_siginfo si;
    int got = 0;

    for (;;) {
        ssize_t n = read(sh->sfd, &si, sizeof(si));

        if (n == (ssize_t)sizeof(si)) {
            got = 1;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return got;
    }
}

/* Wait for "go" on fd 3: 1 for go; 0 for end-of-file (or a cancel) after "c" (the daemon
 * claimed this supervisor for its task: the start may have been committed, so a go-0 record must
 * say it never ran); -1 for end-of-file (or a cancel) before "c": this supervisor was spawned
 * ahead of its task and never given it (exec_local_claim), nothing of it is in the store, and it
 * exits without writing anything. */
static int
wait_go(const shim *sh)
{
    struct pollfd pfd[2] = {{.fd = SHIM_GO_FD, .events = POLLIN},
                            {.fd = sh->sfd, .events = POLLIN}};
    int claimed = 0;

    for (;;) {
        char c;
        ssize_t n;
        int rc = poll(pfd, 2, -1);

        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return claimed ? 0 : -1;
        /* "go" first: a cancel that came with it is seen right after, as a task stopped before
         * it started, rather than as one never allowed to start. */
        if (pfd[0].revents != 0) {
            n = read(SHIM_GO_FD, &c, 1);
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 1 && c == 'c') {
                claimed = 1;
                continue;
            }
            if (n == 1 && c == 'g')
                return 1;
            return claimed ? 0 : -1;
        }
        if (pfd[1].revents != 0 && cancel_pending(sh))
            return claimed ? 0 : -1;
    }
}

/* The task (or run) ended: send its exit record, text of len bytes, on fd 3 ("E", the record's
 * length in 4 bytes, little-endian, the record: exec_local_read_end) and wait for the daemon's "k",
 * which it sends once it has recorded the end durably in its store: then no record file is needed
 * at all (two inodes fewer per task: the record and its temporary). 1 for "k"; 0 for anything else
 * (the daemon died or closed the socket, fd 3 is no socket, nothing came for ACK_WAIT_MS): then the
 * caller writes the record file durably, as a supervisor without a daemon always does. */
static int
end_acked_text(const char *text, size_t len)
{
    struct pollfd pfd = {.fd = SHIM_GO_FD, .events = POLLIN};
    char *msg;
    size_t msg_len;
    ssize_t sent;

    if (spool_end_message(text, len, &msg, &msg_len) != RX_OK)
        return 0;
    do
        sent = send(SHIM_GO_FD, msg, msg_len, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    rx__free(msg);
    if (sent != (ssize_t)msg_len)
        return 0;
    for (;;) {
        char c;
        ssize_t n;
        int rc = poll(&pfd, 1, ACK_WAIT_MS);

        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return 0;
        n = read(SHIM_GO_FD, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        return n == 1 && c == 'k';
    }
}

/* end_acked_text with rec as its record. */
static int
end_acked(const spool_exit *rec)
{
    char *text;
    size_t len;
    int acked;

    if (spool_exit_format(rec, &text, &len) != RX_OK)
        return 0;
    acked = end_acked_text(text, len);
    rx__free(text);
    return acked;
}

static int
write_file(const char *path, const void *data, size_t len)
{
    const char *p = data;
    int fd = rx__create_fresh(path);

    if (fd < 0)
        return -1;
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            close(fd);
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return close(fd);
}

/* The task is about to run: an exit record left by an earlier supervisor of this task (a go-0
 * record: that one was never told to start it) must not outlive this start, or a daemon that
 * finds this supervisor gone without a record of its own would read it as "never ran" and start
 * the task again. */
static void
remove_stale_record(const shim *sh)
{
    char path[PATH_MAX];
    int fd;

    if (spool_task_path(sh->job_dir, sh->idx, ".exit", path, sizeof(path)) != 0 ||
        unlink(path) != 0)
        return; /* none: the common case costs one failed unlink */
    /* Durable before the task starts, so a machine crash cannot bring the record back. */
    fd = open(sh->job_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Read task sh->idx's argument (if the job has arguments) into sh->arg; -1 with rec.error set
 * on failure. */
static int
load_arg(shim *sh)
{
    char path[PATH_MAX];
    rx_err err;
    int fd;

    rx__free(sh->arg);
    sh->arg = NULL;
    sh->arg_len = 0;
    if (!sh->has_args)
        return 0;
    (void)snprintf(path, sizeof(path), "%s/args", sh->job_dir);
    fd = spool_open_read(path, NULL);
    if (fd < 0)
        return set_error(sh, "supervisor: open '%s' failed: %s", path, strerror(errno));
    err = store_args_read(fd, (size_t)sh->idx, &sh->arg, &sh->arg_len);
    close(fd);
    if (err != RX_OK)
        return set_error(sh, "supervisor: read argument %" PRIu64 " from '%s' failed: %s", sh->idx,
                         path, rx_strerror(err));
    return 0;
}

/* Read the work and the argument; -1 with rec.error set on failure. */
static int
load_inputs(shim *sh)
{
    char path[PATH_MAX];
    void *blob = NULL;
    size_t len = 0;
    rx_err err;

    if (snprintf(path, sizeof(path), "%s/work", sh->job_dir) >= (int)sizeof(path))
        return set_error(sh, "supervisor: spool path is too long");
    if (sh->work_blob != NULL) { /* sent with the task: no file */
        err = store_work_decode(sh->work_blob, sh->work_blob_len, &sh->work);
        rx__free(sh->work_blob);
        sh->work_blob = NULL;
        if (err != RX_OK)
            return set_error(sh, "supervisor: the work sent by the daemon is malformed: %s",
                             rx_strerror(err));
    } else {
        err = spool_read_file(path, WORK_MAX_BYTES, &blob, &len);
        if (err == RX_OK) {
            err = store_work_decode(blob, len, &sh->work);
            rx__free(blob);
        }
    }
    if (err != RX_OK)
        return set_error(sh, "supervisor: read '%s' failed: %s", path, rx_strerror(err));
    return load_arg(sh);
}

static int
task_paths(shim *sh)
{
    if (spool_task_path(sh->job_dir, sh->idx, ".out", sh->out_path, PATH_MAX) != 0 ||
        spool_task_path(sh->job_dir, sh->idx, ".result", sh->result_path, PATH_MAX) != 0 ||
        spool_task_path(sh->job_dir, sh->idx, ".error", sh->error_path, PATH_MAX) != 0 ||
        spool_task_path(sh->job_dir, sh->idx, ".arg", sh->arg_path, PATH_MAX) != 0)
        return set_error(sh, "supervisor: spool path is too long");
    return 0;
}

/* argv and envp of the task (exec/argv.h's rule), owned by the caller. */
static int
task_command(shim *sh, char ***out_argv, size_t *out_argc, char ***out_envp, char **extra,
             size_t n_extra)
{
    const store_work *w = &sh->work;
    rx_buf arg = {sh->arg ? sh->arg : "", sh->arg_len};
    char **envp = NULL;
    size_t n_env = 0;

    if (w->kind == RX_WORK_COMMAND) {
        if (sh->has_args && memchr(arg.data, '\0', arg.len) != NULL)
            return set_error(sh, "argument %" PRIu64 " holds a NUL byte: it cannot reach argv",
                             sh->idx);
        if (rx__task_argv((const char *const *)w->argv, sh->has_args ? &arg : NULL, out_argv,
                          out_argc) != RX_OK)
            return set_error(sh, "supervisor: out of memory");
    } else {
        if (rx__task_argv((const char *const *)w->argv, NULL, out_argv, out_argc) != RX_OK)
            return set_error(sh, "supervisor: out of memory");
    }
    if (rx__env_merge(environ, (const char *const *)w->env, n_extra, &envp, &n_env) != RX_OK) {
        rx__strv_free(*out_argv, *out_argc);
        return set_error(sh, "supervisor: out of memory");
    }
    for (size_t i = 0; i < n_extra; i++)
        envp[n_env + i] = extra[i];
    *out_envp = envp;
    return 0;
}

/* Check the result file of a task that succeeded: a regular file within the size limit. A
 * result that breaks the rules fails the task (and is removed, so nobody reads it). */
static void
check_result(shim *sh)
{
    struct stat st;

    if (lstat(sh->result_path, &st) != 0)
        return; /* no result: an empty value */
    if (!S_ISREG(st.st_mode)) {
        (void)unlink(sh->result_path);
        sh->rec.state = RX_TASK_ERROR;
        (void)set_error(sh, "$RXJOB_RESULT is not a regular file");
    } else if ((uint64_t)st.st_size > sh->result_bytes) {
        (void)unlink(sh->result_path);
        sh->rec.state = RX_TASK_ERROR;
        (void)set_error(sh,
                        "result of %lld bytes is over the result_bytes limit of %" PRIu64 " bytes",
                        (long long)st.st_size, sh->result_bytes);
    }
}

/* How a function task failed: its RXJOB_ERROR message, else what its exit says. */
static void
function_failure(shim *sh, int wstatus, const char *text)
{
    void *msg = NULL;
    size_t len = 0;
    rx_err err = spool_read_file(sh->error_path, ERROR_MAX_BYTES, &msg, &len);
    int have_msg = err == RX_OK && len > 0;

    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 127) {
        /* rx_init's "no function of that name" (DESIGN.md: "could not start ... no such
         * symbol"). */
        sh->rec.state = RX_TASK_START_FAILED;
        if (have_msg)
            (void)set_error(sh, "%s", (char *)msg);
        else
            (void)set_error(sh, "function '%s' is not registered in '%s' (%s)",
                            sh->work.function ? sh->work.function : "?", sh->work.argv[0], text);
    } else if (WIFSIGNALED(wstatus)) {
        sh->rec.state = RX_TASK_SIGNALED;
        (void)set_error(sh, "%s", text);
    } else {
        sh->rec.state = RX_TASK_ERROR;
        if (have_msg)
            (void)set_error(sh, "%s", (char *)msg);
        else
            (void)set_error(sh, "function failed (%s)", text);
    }
    rx__free(msg);
}

/* read(2) from the relay's pipe, again on EINTR. */
static ssize_t
relay_read_some(relay *r, char *buf, size_t len)
{
    ssize_t n;

    do {
        n = read(r->in_fd, buf, len);
    } while (n < 0 && errno == EINTR);
    return n;
}

/*
 * Move what the pipe holds now: up to the cap into t<i>.out, the rest discarded. Returns 1 at
 * end-of-file (every writer closed the pipe; in_fd is closed), 0 when the pipe is empty for now.
 */
static int
relay_pump(relay *r)
{
    static char buf[64 * 1024];

    while (r->in_fd >= 0) {
        ssize_t n;

        if (r->kept < r->cap && r->write_errno == 0 && !r->no_splice) {
            uint64_t room = r->cap - r->kept;

            n = splice(r->in_fd, NULL, r->out_fd, NULL,
                       room < RELAY_STEP ? (size_t)room : RELAY_STEP,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                r->kept += (uint64_t)n;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN)
                return 0;
            if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
                r->no_splice = 1;
                continue;
            }
            if (n < 0) {
                r->write_errno = errno; /* the file's side: ENOSPC, EFBIG, EIO */
                continue;
            }
        } else {
            n = relay_read_some(r, buf, sizeof(buf));
            if (n < 0 && errno == EAGAIN)
                return 0;
            if (n > 0) {
                size_t keep = 0;

                if (r->kept < r->cap && r->write_errno == 0) {
                    uint64_t room = r->cap - r->kept;

                    keep = (uint64_t)n < room ? (size_t)n : (size_t)room;
                    for (size_t done = 0; done < keep;) {
                        ssize_t w = write(r->out_fd, buf + done, keep - done);

                        if (w < 0 && errno == EINTR)
                            continue;
                        if (w < 0) {
                            r->write_errno = errno;
                            keep = done;
                            break;
                        }
                        done += (size_t)w;
                    }
                    r->kept += keep;
                }
                r->discarded += (uint64_t)n - keep;
                continue;
            }
        }
        /* n == 0 (end-of-file), or a read error: the pipe is done either way. */
        close(r->in_fd);
        r->in_fd = -1;
        return 1;
    }
    return 1;
}

/* After the task ended: take what is left in the pipe, waiting for more only while some writer
 * (a child that outlived the task's group) keeps sending, at most RELAY_LINGER_MS after the last
 * byte and RELAY_FINISH_MS in all (a child in a session of its own, out of reach of the group
 * kill, could write forever and hold the task RUNNING, past its time limit and any cancel);
 * then close the pipe and append the marker if anything was cut. */
static void
relay_finish(relay *r)
{
    int64_t until = rx__now_ms() + RELAY_FINISH_MS;

    while (r->in_fd >= 0) {
        struct pollfd pfd = {.fd = r->in_fd, .events = POLLIN};
        uint64_t before = r->kept + r->discarded;
        int64_t left;

        if (relay_pump(r))
            break;
        left = until - rx__now_ms();
        if (left <= 0)
            break;
        if (poll(&pfd, 1, left < RELAY_LINGER_MS ? (int)left : RELAY_LINGER_MS) == 0 &&
            r->kept + r->discarded == before)
            break;
    }
    if (r->in_fd >= 0) {
        close(r->in_fd);
        r->in_fd = -1;
    }
    if (r->discarded > 0 || r->write_errno != 0) {
        char why[160], line[320];
        int n;

        if (r->write_errno != 0)
            (void)snprintf(why, sizeof(why), "writing the output failed: %s",
                           strerror(r->write_errno));
        else
            (void)snprintf(why, sizeof(why), "output_bytes limit");
        n = snprintf(line, sizeof(line), OUTPUT_CUT_MARKER, r->kept, why, r->discarded);
        if (n > 0 && write(r->out_fd, line, (size_t)n) < 0) {
            /* Nowhere left to say it: the exit record is what the daemon reads. */
        }
    }
}

/* A watch loop's turn: SIGKILL the task's group once *sigkill_at (ms, 0 = none) has come (it is 0
 * again then); return the poll timeout until the next of deadline (ms, 0 = none), *sigkill_at and,
 * without a pidfd, the next exit check (-1: none, wait for an event). */
static int
watch_timeout(rx__proc *proc, int64_t now, int64_t deadline, int64_t *sigkill_at)
{
    int64_t next = deadline;

    if (*sigkill_at > 0 && now >= *sigkill_at) {
        (void)rx__proc_signal_group(proc, SIGKILL);
        *sigkill_at = 0;
    }
    if (*sigkill_at > 0 && (next == 0 || *sigkill_at < next))
        next = *sigkill_at;
    if (proc->pidfd < 0 && (next == 0 || next > now + POLL_NO_PIDFD_MS))
        next = now + POLL_NO_PIDFD_MS;
    return next == 0 ? -1 : next > now ? (int)(next - now) : 0;
}

/* Wait for the task, enforcing the time limit and stopping it on a cancel signal. */
static enum stop_reason
watch_task(shim *sh, rx__proc *proc, relay *out)
{
    enum stop_reason stop = STOP_NONE;
    int64_t start_ms = rx__now_ms();
    int64_t deadline = sh->timeout_ms > 0 ? start_ms + sh->timeout_ms : 0;
    int64_t sigkill_at = 0;

    for (;;) {
        struct pollfd pfd[3];
        int64_t now = rx__now_ms();
        nfds_t n = 0, n_relay = 0;
        int timeout, rc;

        if (stop == STOP_NONE && deadline > 0 && now >= deadline) {
            stop = STOP_TIMEOUT;
            (void)rx__proc_signal_group(proc, SIGTERM);
            sigkill_at = now + sh->grace_ms;
        }
        timeout = watch_timeout(proc, now, stop == STOP_NONE ? deadline : 0, &sigkill_at);

        pfd[n].fd = sh->sfd;
        pfd[n++].events = POLLIN;
        if (proc->pidfd >= 0) {
            pfd[n].fd = proc->pidfd;
            pfd[n++].events = POLLIN;
        }
        if (out != NULL && out->in_fd >= 0) {
            n_relay = n;
            pfd[n].fd = out->in_fd;
            pfd[n++].events = POLLIN;
        }
        rc = poll(pfd, n, timeout);
        if (rc > 0 && n_relay > 0 && pfd[n_relay].revents != 0)
            (void)relay_pump(out);
        if (rc < 0 && errno != EINTR)
            break; /* cannot wait: reap (which kills the group) rather than spin */
        /* Read, the signal is gone: remembered even when the task is being stopped already
         * (its time limit), so that a chunk does not go on with the next (run_command_chunk). */
        if (rc > 0 && pfd[0].revents != 0 && cancel_pending(sh)) {
            sh->canceled = 1;
            if (stop == STOP_NONE) {
                stop = STOP_CANCEL;
                (void)rx__proc_signal_group(proc, SIGTERM);
                sigkill_at = rx__now_ms() + sh->grace_ms;
            }
        }
        if (proc->pidfd >= 0 ? (rc > 0 && pfd[1].revents != 0) : rx__proc_exited(proc))
            break;
    }
    return stop;
}

/* What can be done before "go" without starting anything: the spool paths, the work and the
 * argument (reads only). Done while the daemon commits the task's start, so that "go" finds
 * the task ready to spawn. -1 with rec.error set on failure (reported after "go"). */
static int
prepare_task(shim *sh)
{
    if (task_paths(sh) != 0 || load_inputs(sh) != 0)
        return -1;
    sh->loaded = 1;
    return 0;
}

/* The task has been reaped (which killed what was left of its process group): kill what else it
 * left in this supervisor's session, children it moved to process groups of their own
 * (setpgid, a shell's job control), so that nothing of the task runs on unwatched once its end
 * is reported (stopped, timed out or not). Only a session leader (the daemon starts it with
 * setsid; not under Slurm) owns its session. It is its descendants' subreaper (run_task), so
 * when it has no child left, nothing of the task is left: the common case costs one waitid,
 * not a scan of /proc. A child that left the session (setsid) is out of reach. */
static void
kill_leftovers(void)
{
    siginfo_t info;
    int killed;

    if (getsid(0) != getpid())
        return;
    memset(&info, 0, sizeof(info));
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 && errno == ECHILD)
        return;
    killed = rx__kill_session(getpid(), 0, (uid_t)-1);
    /* Reap them (they are, or become, this process's children), 100 ms at most: one that left
     * the session lives on (and is not waited for when nothing was killed). */
    for (int i = 0; i < 100; i++) {
        pid_t got = waitpid(-1, NULL, WNOHANG);

        if (got < 0 && errno != EINTR)
            break;
        if (got == 0) {
            if (killed == 0)
                break;
            struct timespec ms = {0, 1000000L};

            (void)nanosleep(&ms, NULL);
        }
    }
}

/* Start and watch the task; fills sh->rec. */
static void
run_task(shim *sh)
{
    char *extra[8] = {NULL};
    size_t n_extra = 0;
    char **argv = NULL, **envp = NULL;
    size_t argc = 0;
    char stdin_path[PATH_MAX], text[160];
    rx__spawn_req req;
    rx__proc proc = {0, -1};
    enum stop_reason stop;
    int out_fd = -1, spawn_errno = 0, wstatus = 0;
    int pipe_fds[2] = {-1, -1};
    relay out = {.in_fd = -1, .out_fd = -1};

    sh->rec.state = RX_TASK_START_FAILED;
    sh->rec.exit_status = -1;
    if (!sh->loaded)
        return; /* prepare_task failed: rec.error says why */
    (void)unlink(sh->result_path);
    (void)unlink(sh->error_path);
    extra[n_extra++] = rx__env_entry("RXJOB_TASK_INDEX", "%" PRIu64, sh->idx);
    extra[n_extra++] = rx__env_entry("RXJOB_TASK_COUNT", "%" PRIu64, sh->n_tasks);
    extra[n_extra++] = rx__env_entry("RXJOB_RESULT", "%s", sh->result_path);
    if (sh->work.kind == RX_WORK_FUNCTION) {
        extra[n_extra++] = rx__env_entry("RXJOB_FUNCTION", "%s", sh->work.function);
        extra[n_extra++] = rx__env_entry("RXJOB_ARG", "%s", sh->arg_path);
        extra[n_extra++] = rx__env_entry("RXJOB_ERROR", "%s", sh->error_path);
    }
    for (size_t i = 0; i < n_extra; i++) {
        if (extra[i] == NULL) {
            (void)set_error(sh, "supervisor: out of memory");
            goto done;
        }
    }
    if (sh->work.kind == RX_WORK_FUNCTION &&
        write_file(sh->arg_path, sh->arg ? sh->arg : "", sh->arg_len) != 0) {
        (void)set_error(sh, "supervisor: write '%s' failed: %s", sh->arg_path, strerror(errno));
        goto done;
    }
    if (task_command(sh, &argv, &argc, &envp, extra, n_extra) != 0)
        goto done;
    out_fd = rx__create_fresh(sh->out_path);
    if (out_fd < 0) {
        (void)set_error(sh, "supervisor: create '%s' failed: %s", sh->out_path, strerror(errno));
        goto done;
    }
    /* With an output cap the task writes into a pipe that this process drains (relay_pump). */
    if (sh->output_bytes > 0) {
        if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
            (void)set_error(sh, "supervisor: pipe failed: %s", strerror(errno));
            goto done;
        }
        (void)fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
        /* A bigger pipe, fewer wake-ups for a task that writes a lot (best effort: the most an
         * unprivileged process may ask is /proc/sys/fs/pipe-max-size, 1 MiB by default). */
        (void)fcntl(pipe_fds[0], F_SETPIPE_SZ, (int)RELAY_STEP);
        out.in_fd = pipe_fds[0];
        out.out_fd = out_fd;
        out.cap = sh->output_bytes;
    }
    (void)snprintf(stdin_path, sizeof(stdin_path), "%s/stdin", sh->job_dir);
    req.argv = (const char *const *)argv;
    req.envp = envp;
    req.cwd = sh->work.cwd;
    req.stdin_path = sh->work.stdin_data != NULL ? stdin_path : NULL;
    req.out_fd = out.in_fd >= 0 ? pipe_fds[1] : out_fd;
    /* Orphans of the task become this process's children (kill_leftovers). */
    if (getsid(0) == getpid())
        (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
    sh->rec.started_s = now_utc_s();
    if (rx__spawn(&req, &proc, &spawn_errno) != RX_OK) {
        sh->rec.ended_s = sh->rec.started_s;
        if (spawn_errno == ENOENT)
            (void)set_error(sh, "command not found: '%s'%s", argv[0], rx__not_found_hint(argv[0]));
        else
            (void)set_error(sh, "cannot start '%s': %s", argv[0], strerror(spawn_errno));
        goto done;
    }
    if (out.in_fd >= 0) {
        close(pipe_fds[1]); /* the task holds the write end now */
        pipe_fds[1] = -1;
    } else {
        close(out_fd);
        out_fd = -1;
    }
    sh->rec.task_pid = proc.pid;

    stop = watch_task(sh, &proc, out.in_fd >= 0 ? &out : NULL);
    if (rx__proc_reap(&proc, &wstatus) != RX_OK) {
        kill_leftovers();
        if (out.out_fd >= 0)
            relay_finish(&out);
        sh->rec.ended_s = now_utc_s();
        sh->rec.state = RX_TASK_LOST;
        (void)set_error(sh, "supervisor: waitpid failed: %s", strerror(errno));
        goto done;
    }
    /* Reaping killed what was left of the task's group, and kill_leftovers the rest of the
     * session: the output ends here. */
    kill_leftovers();
    if (out.out_fd >= 0)
        relay_finish(&out);
    sh->rec.ended_s = now_utc_s();
    rx__wait_status_text(wstatus, text, sizeof(text));
    sh->rec.exit_status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
    sh->rec.signal = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0;
    if (stop == STOP_TIMEOUT) {
        sh->rec.state = RX_TASK_TIMEOUT;
        (void)set_error(sh, "time limit of %g s exceeded (%s)", (double)sh->timeout_ms / 1000.0,
                        text);
    } else if (stop == STOP_CANCEL) {
        /* The daemon words the reason (canceled, or the job stopped after a failure). */
        sh->rec.state = RX_TASK_STOPPED;
        (void)set_error(sh, "%s", text);
    } else if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0 &&
               sh->work.kind == RX_WORK_FUNCTION && access(sh->result_path, F_OK) != 0) {
        /* rx_init writes a result file (empty or not) whenever the function succeeds: none
         * means the program ran its own main instead of the task. */
        sh->rec.state = RX_TASK_ERROR;
        (void)set_error(sh, "the program exited 0 without running the function: does its main "
                            "call rx_init(&argc, &argv) first?");
    } else if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) {
        sh->rec.state = RX_TASK_OK;
        check_result(sh);
    } else if (sh->work.kind == RX_WORK_FUNCTION) {
        function_failure(sh, wstatus, text);
    } else {
        sh->rec.state = WIFSIGNALED(wstatus) ? RX_TASK_SIGNALED : RX_TASK_EXIT;
        (void)set_error(sh, "%s", text);
    }
done:
    if (out_fd >= 0)
        close(out_fd);
    if (out.in_fd >= 0)
        close(out.in_fd);
    if (pipe_fds[1] >= 0)
        close(pipe_fds[1]);
    rx__strv_free(argv, argc);
    rx__free(envp);
    for (size_t i = 0; i < n_extra; i++)
        rx__free(extra[i]);
}

/* ---------------------------------------------------------------------------------------------
 * Chunks: one exec of the program runs tasks INDEX .. INDEX + COUNT - 1 in a row
 *
 * The program's rx_init (src/client/registry.c) says on the pipe RXJOB_CHUNK_FD, one line per
 * step: "s I\n" before task I, "e I STATUS\n" after it (STATUS 0: ok, t<I>.result written; 1:
 * failed, t<I>.error says why; 127: no such function). Tasks start in index order, one at a time.
 * The time limit applies to each task from its "s"; the first task counts as started from the
 * exec (so a program that never says anything still ends it, and a run always makes progress).
 * When the program dies, or is killed (time limit, cancel), inside task I, I ends as that says
 * and the tasks after it never started: they have no entry in the run's record, and the daemon
 * puts them back in the queue (as the local pool does, src/exec/pool.c).
 * ------------------------------------------------------------------------------------------- */

#define CHUNK_LINE_MAX   128
/* Without a time limit, the chunk pipe is read every CHUNK_DRAIN_MS, not at each message: what
 * the program says is only needed when it ends (which task ran last: all is read then), for a
 * deadline (none) and to find a protocol error (found a few ms later). A wake-up per task was a
 * good part of a short task's time. CHUNK_PIPE_BYTES of pipe hold far more than a program says
 * in that time (a message is 20-40 bytes). */
#define CHUNK_DRAIN_MS   10
#define CHUNK_PIPE_BYTES (1 << 20)

enum { STOP_PROTOCOL = STOP_CANCEL + 1 };

typedef struct chunk_watch {
    int fd; /* the pipe's read end, or -1 at end-of-file */
    char buf[CHUNK_LINE_MAX * 4];
    size_t len;
    long cur; /* the entry running, or -1 */
    int said; /* the current entry's "s" came (always, but for the first before its "s") */
    int64_t deadline;
    char bad[CHUNK_LINE_MAX + 64]; /* the protocol error, if any */
} chunk_watch;

/* The task paths of index i into sh (result_path, error_path). -1 when too long. */
static int
chunk_task_paths(shim *sh, uint64_t i)
{
    return spool_task_path(sh->job_dir, i, ".result", sh->result_path, PATH_MAX) != 0 ||
                   spool_task_path(sh->job_dir, i, ".error", sh->error_path, PATH_MAX) != 0
               ? -1
               : 0;
}

/* Move sh->rec into the current entry, which ends. */
static void
chunk_end_entry(shim *sh, chunk_watch *w)
{
    spool_exit *t = &sh->run.tasks[w->cur];

    sh->rec.go = 1;
    sh->rec.started_s = t->started_s;
    sh->rec.task_pid = t->task_pid;
    sh->rec.ended_s = now_utc_s();
    *t = sh->rec;
    memset(&sh->rec, 0, sizeof(sh->rec));
    w->cur = -1;
    w->deadline = sh->timeout_ms > 0 ? rx__now_ms() + sh->timeout_ms : 0;
}

/* A new entry for task idx, running from now. */
static void
chunk_start_entry(shim *sh, chunk_watch *w, uint64_t idx, pid_t pid)
{
    spool_exit *t = &sh->run.tasks[sh->run.n];

    memset(t, 0, sizeof(*t));
    t->go = 1;
    t->started_s = now_utc_s();
    t->task_pid = pid;
    sh->run.idx[sh->run.n] = idx;
    w->cur = (long)sh->run.n++;
    w->deadline = sh->timeout_ms > 0 ? rx__now_ms() + sh->timeout_ms : 0;
}

/* "e I STATUS" for the current entry; at (STATUS 0 only) = the result's place in the run's
 * results file, OFFSET and LENGTH, or NULL (t<I>.result). */
static void
chunk_task_done(shim *sh, chunk_watch *w, uint64_t idx, int64_t status, const uint64_t *at)
{
    memset(&sh->rec, 0, sizeof(sh->rec));
    sh->rec.exit_status = (int)status;
    /* The common case first, without the task's paths (two snprintfs a task: a tenth of this
     * supervisor's time in a run of short tasks): its result is in the run's results file. */
    if (status == 0 && at != NULL) {
        sh->rec.state = RX_TASK_OK;
        if (at[1] > sh->result_bytes) {
            sh->rec.state = RX_TASK_ERROR;
            (void)set_error(sh,
                            "result of %" PRIu64 " bytes is over the result_bytes limit of %" PRIu64
                            " bytes",
                            at[1], sh->result_bytes);
        } else {
            sh->rec.result_run = sh->run.first + 1;
            sh->rec.result_off = at[0];
            sh->rec.result_len = at[1];
        }
    } else if (chunk_task_paths(sh, idx) != 0) {
        sh->rec.state = RX_TASK_ERROR;
        (void)set_error(sh, "supervisor: spool path is too long");
    } else if (status == 0) {
        sh->rec.state = RX_TASK_OK;
        check_result(sh);
    } else {
        void *msg = NULL;
        size_t len = 0;
        int have = spool_read_file(sh->error_path, ERROR_MAX_BYTES, &msg, &len) == RX_OK && len > 0;

        sh->rec.state = status == 127 ? RX_TASK_START_FAILED : RX_TASK_ERROR;
        if (have)
            (void)set_error(sh, "%s", (char *)msg);
        else
            (void)set_error(sh, "function failed (exit status %d)", (int)status);
        rx__free(msg);
        (void)unlink(sh->error_path);
    }
    chunk_end_entry(sh, w);
}

/* Act on the complete lines in w->buf. -1 on a protocol error (w->bad says which). */
static int
chunk_lines(shim *sh, chunk_watch *w, pid_t pid)
{
    char *p = w->buf, *nl;

    while ((nl = memchr(p, '\n', w->len - (size_t)(p - w->buf))) != NULL) {
        char line[CHUNK_LINE_MAX + 1];
        size_t n = (size_t)(nl - p);
        unsigned long long idx = 0, at[2] = {0, 0};
        long long status = 0;
        char extra;
        int got;
        uint64_t want;

        if (n > CHUNK_LINE_MAX)
            n = CHUNK_LINE_MAX;
        memcpy(line, p, n);
        line[n] = '\0';
        p = nl + 1;
        want = sh->run.first + sh->run.n; /* the next task to start */
        if (sscanf(line, "s %llu%c", &idx, &extra) == 1) {
            if (w->cur >= 0 && !w->said && sh->run.idx[w->cur] == idx) {
                w->said = 1; /* the first task: its clock starts again now */
                sh->run.tasks[w->cur].started_s = now_utc_s();
                w->deadline = sh->timeout_ms > 0 ? rx__now_ms() + sh->timeout_ms : 0;
                continue;
            }
            if (w->cur < 0 && idx == want && sh->run.n < sh->run.count) {
                chunk_start_entry(sh, w, idx, pid);
                w->said = 1;
                continue;
            }
        } else if ((got = sscanf(line, "e %llu %lld %llu %llu%c", &idx, &status, &at[0], &at[1],
                                 &extra)) == 2 ||
                   (got == 4 && status == 0 && at[0] <= INT64_MAX && at[1] <= INT64_MAX - at[0])) {
            if (w->cur >= 0 && w->said && sh->run.idx[w->cur] == idx && status >= 0 &&
                status <= 255) {
                uint64_t place[2] = {at[0], at[1]};

                chunk_task_done(sh, w, idx, status, got == 4 ? place : NULL);
                continue;
            }
        }
        (void)snprintf(w->bad, sizeof(w->bad), "the program broke the chunk protocol: '%s'", line);
        w->len = 0;
        return -1;
    }
    w->len -= (size_t)(p - w->buf);
    memmove(w->buf, p, w->len);
    if (w->len >= CHUNK_LINE_MAX) {
        (void)snprintf(w->bad, sizeof(w->bad),
                       "the program broke the chunk protocol: a line "
                       "over %d bytes",
                       CHUNK_LINE_MAX);
        w->len = 0;
        return -1;
    }
    return 0;
}

/* Read what the pipe holds now and act on it. -1 on a protocol error. */
static int
chunk_pump(shim *sh, chunk_watch *w, pid_t pid)
{
    while (w->fd >= 0) {
        ssize_t n = read(w->fd, w->buf + w->len, sizeof(w->buf) - w->len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0) {
            close(w->fd);
            w->fd = -1;
            return 0;
        }
        w->len += (size_t)n;
        if (chunk_lines(sh, w, pid) != 0)
            return -1;
    }
    return 0;
}

/* Wait for the program, enforcing each task's time limit, stopping it on a cancel signal or a
 * protocol error. */
static int
chunk_watch_program(shim *sh, rx__proc *proc, chunk_watch *w)
{
    int stop = STOP_NONE;
    int64_t sigkill_at = 0;

    for (;;) {
        struct pollfd pfd[3];
        int64_t now = rx__now_ms();
        nfds_t n = 0;
        int timeout, rc, i_pidfd = -1, i_pipe = -1;

        /* What the program said and this loop has not read yet counts first: a task that
         * ended in time, and the next one that just started, must not take the time limit of
         * the one before (the pipe may hold "e I" and "s I+1" unread on a busy machine). */
        if (stop == STOP_NONE && w->deadline > 0 && now >= w->deadline && w->fd >= 0 &&
            chunk_pump(sh, w, proc->pid) != 0) {
            stop = STOP_PROTOCOL;
            (void)rx__proc_signal_group(proc, SIGKILL);
        }
        /* Between tasks and after the last one the time limit runs too, from the last end: a
         * program that hangs there (an atexit handler, a destructor) is stopped; no task
         * fails for it. */
        if (stop == STOP_NONE && w->deadline > 0 && now >= w->deadline) {
            stop = STOP_TIMEOUT;
            (void)rx__proc_signal_group(proc, SIGTERM);
            sigkill_at = now + sh->grace_ms;
        }
        timeout = watch_timeout(proc, now, stop == STOP_NONE ? w->deadline : 0, &sigkill_at);

        pfd[n].fd = sh->sfd;
        pfd[n++].events = POLLIN;
        if (proc->pidfd >= 0) {
            i_pidfd = (int)n;
            pfd[n].fd = proc->pidfd;
            pfd[n++].events = POLLIN;
        }
        if (w->fd >= 0 && sh->timeout_ms > 0) {
            i_pipe = (int)n;
            pfd[n].fd = w->fd;
            pfd[n++].events = POLLIN;
        } else if (w->fd >= 0) {
            /* No deadline to keep: read it from time to time (CHUNK_DRAIN_MS). */
            if (chunk_pump(sh, w, proc->pid) != 0 && stop == STOP_NONE) {
                stop = STOP_PROTOCOL;
                (void)rx__proc_signal_group(proc, SIGKILL);
            }
            if (timeout < 0 || timeout > CHUNK_DRAIN_MS)
                timeout = CHUNK_DRAIN_MS;
        }
        rc = poll(pfd, n, timeout);
        if (rc < 0 && errno != EINTR)
            break; /* cannot wait: reap (which kills the group) rather than spin */
        if (rc > 0 && i_pipe >= 0 && pfd[i_pipe].revents != 0 &&
            chunk_pump(sh, w, proc->pid) != 0 && stop == STOP_NONE) {
            stop = STOP_PROTOCOL;
            (void)rx__proc_signal_group(proc, SIGKILL);
        }
        if (rc > 0 && pfd[0].revents != 0 && cancel_pending(sh) && stop == STOP_NONE) {
            stop = STOP_CANCEL;
            (void)rx__proc_signal_group(proc, SIGTERM);
            sigkill_at = rx__now_ms() + sh->grace_ms;
        }
        if (i_pidfd >= 0 ? (rc > 0 && pfd[i_pidfd].revents != 0) : rx__proc_exited(proc))
            break;
    }
    return stop;
}

/* The current entry ended with the program: how, from its wait status and why it stopped. */
static void
chunk_end_with_program(shim *sh, chunk_watch *w, int stop, int wstatus)
{
    char text[160];

    memset(&sh->rec, 0, sizeof(sh->rec));
    rx__wait_status_text(wstatus, text, sizeof(text));
    sh->rec.exit_status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
    sh->rec.signal = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0;
    if (chunk_task_paths(sh, sh->run.idx[w->cur]) != 0) {
        sh->rec.state = RX_TASK_ERROR;
        (void)set_error(sh, "supervisor: spool path is too long");
    } else if (stop == STOP_TIMEOUT) {
        sh->rec.state = RX_TASK_TIMEOUT;
        (void)set_error(sh, "time limit of %g s exceeded (%s)", (double)sh->timeout_ms / 1000.0,
                        text);
    } else if (stop == STOP_CANCEL) {
        sh->rec.state = RX_TASK_STOPPED; /* the daemon words the reason */
        (void)set_error(sh, "%s", text);
    } else if (stop == STOP_PROTOCOL) {
        sh->rec.state = RX_TASK_ERROR;
        (void)set_error(sh, "%s", w->bad);
    } else if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) {
        sh->rec.state = RX_TASK_ERROR;
        if (!w->said)
            (void)set_error(sh, "the program exited 0 without running the function: does its "
                                "main call rx_init(&argc, &argv) first?");
        else
            (void)set_error(sh, "the program exited during the task (%s)", text);
    } else {
        function_failure(sh, wstatus, text);
    }
    (void)unlink(sh->error_path);
    chunk_end_entry(sh, w);
}

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1 /* linux/fs.h; musl's stdio.h may not have it */
#endif

/* Rename run_out to out_path unless out_path exists; remove run_out then. (The system call:
 * the libc the shim is built with, musl or glibc, may not have renameat2.) */
static void
run_out_give(const char *run_out, const char *out_path)
{
    if (syscall(SYS_renameat2, AT_FDCWD, run_out, AT_FDCWD, out_path, RENAME_NOREPLACE) == 0)
        return;
    /* A file system without RENAME_NOREPLACE: link, which does not replace either. */
    if (errno == EINVAL || errno == ENOSYS) {
        if (link(run_out, out_path) != 0 && errno != EEXIST)
            return;
    } else if (errno != EEXIST) {
        return;
    }
    (void)unlink(run_out);
}

/* Run the chunk: one exec of the program, its tasks in a row; fills sh->run. On a failure before
 * the program started, sh->rec says why (for the first task) and sh->run is left empty. */
static void
run_chunk(shim *sh)
{
    spool_run_exit *run = &sh->run;
    char *extra[12] = {NULL};
    size_t n_extra = 0;
    char **argv = NULL, **envp = NULL;
    size_t argc = 0;
    rx__spawn_req req;
    rx__proc proc = {0, -1};
    int out_fd = -1, spawn_errno = 0, wstatus = 0, stop;
    int ctl[2] = {-1, -1};
    char run_out[PATH_MAX];
    chunk_watch w;

    memset(&w, 0, sizeof(w));
    w.fd = -1;
    w.cur = -1;
    sh->rec.state = RX_TASK_START_FAILED;
    sh->rec.exit_status = -1;
    if (sh->count > SIZE_MAX / sizeof(spool_exit)) {
        (void)set_error(sh, "supervisor: a chunk of %" PRIu64 " tasks is too large", sh->count);
        return;
    }
    run->idx = rx__calloc((size_t)sh->count, sizeof(*run->idx));
    run->tasks = rx__calloc((size_t)sh->count, sizeof(*run->tasks));
    if (pipe2(ctl, O_CLOEXEC) != 0 || run->idx == NULL || run->tasks == NULL) {
        (void)set_error(sh, "supervisor: %s",
                        run->idx && run->tasks ? strerror(errno) : "out of memory");
        goto fail;
    }
    (void)fcntl(ctl[0], F_SETFL, O_NONBLOCK);
    (void)fcntl(ctl[1], F_SETFD, 0); /* the program's: it says its steps there */
    if (sh->timeout_ms == 0)
        (void)fcntl(ctl[0], F_SETPIPE_SZ, CHUNK_PIPE_BYTES); /* best effort: read less often */
    extra[n_extra++] = rx__env_entry("RXJOB_TASK_INDEX", "%" PRIu64, sh->idx);
    extra[n_extra++] = rx__env_entry("RXJOB_TASK_COUNT", "%" PRIu64, sh->n_tasks);
    extra[n_extra++] = rx__env_entry("RXJOB_FUNCTION", "%s", sh->work.function);
    extra[n_extra++] = rx__env_entry("RXJOB_CHUNK_FD", "%d", ctl[1]);
    extra[n_extra++] = rx__env_entry("RXJOB_CHUNK_FIRST", "%" PRIu64, sh->idx);
    extra[n_extra++] = rx__env_entry("RXJOB_CHUNK_COUNT", "%" PRIu64, sh->count);
    extra[n_extra++] = rx__env_entry("RXJOB_CHUNK_STOP", "%d", sh->stop_on_failure);
    extra[n_extra++] = rx__env_entry("RXJOB_SPOOL", "%s", sh->job_dir);
    if (sh->has_args)
        extra[n_extra++] = rx__env_entry("RXJOB_ARGS", "%s/args", sh->job_dir);
    for (size_t i = 0; i < n_extra; i++) {
        if (extra[i] == NULL) {
            (void)set_error(sh, "supervisor: out of memory");
            goto fail;
        }
    }
    if (task_command(sh, &argv, &argc, &envp, extra, n_extra) != 0)
        goto fail;
    /* The output of the task running now: what the program says before its first task counts
     * as that task's; rx_init renames it to t<I>.out when task I wrote to it (registry.c). */
    if (spool_run_out_path(sh->job_dir, sh->idx, run_out, sizeof(run_out)) != 0) {
        (void)set_error(sh, "supervisor: spool path is too long");
        goto fail;
    }
    out_fd = rx__create_fresh(run_out);
    if (out_fd < 0) {
        (void)set_error(sh, "supervisor: create '%s' failed: %s", run_out, strerror(errno));
        goto fail;
    }
    req.argv = (const char *const *)argv;
    req.envp = envp;
    req.cwd = sh->work.cwd;
    req.stdin_path = NULL;
    req.out_fd = out_fd;
    run->go = 1;
    run->first = sh->idx;
    run->count = sh->count;
    if (rx__spawn(&req, &proc, &spawn_errno) != RX_OK) {
        if (spawn_errno == ENOENT)
            (void)set_error(sh, "command not found: '%s'", argv[0]);
        else
            (void)set_error(sh, "cannot start '%s': %s", argv[0], strerror(spawn_errno));
        (void)unlink(run_out);
        chunk_start_entry(sh, &w, sh->idx, 0);
        chunk_end_entry(sh, &w);
        goto done;
    }
    close(ctl[1]);
    ctl[1] = -1;
    close(out_fd);
    out_fd = -1;
    w.fd = ctl[0];
    ctl[0] = -1;
    chunk_start_entry(sh, &w, sh->idx, proc.pid); /* the first counts as started */
    stop = chunk_watch_program(sh, &proc, &w);
    if (rx__proc_reap(&proc, &wstatus) != RX_OK) {
        wstatus = 0;
        if (stop == STOP_NONE) {
            stop = STOP_PROTOCOL;
            (void)snprintf(w.bad, sizeof(w.bad), "supervisor: waitpid failed: %s", strerror(errno));
        }
    }
    /* What the program said before it ended counts. */
    if (stop == STOP_NONE && chunk_pump(sh, &w, proc.pid) != 0)
        stop = STOP_PROTOCOL;
    /* The output of the task that was running is that task's; with none running, the file
     * (if the program left one) holds nothing of a task's. Never over its t<I>.out: there is one
     * when the program died after rx_init gave the task its output and made the next one's
     * file, before it said the task ended (a time limit or a cancel then). */
    if (w.cur >= 0 &&
        spool_task_path(sh->job_dir, sh->run.idx[w.cur], ".out", sh->out_path, PATH_MAX) == 0)
        run_out_give(run_out, sh->out_path);
    else
        (void)unlink(run_out);
    if (w.cur >= 0)
        chunk_end_with_program(sh, &w, stop, wstatus);
    goto done;

fail:
    rx__free(run->idx);
    rx__free(run->tasks);
    run->idx = NULL;
    run->tasks = NULL;
    run->count = 0;
done:
    if (w.fd >= 0)
        close(w.fd);
    if (ctl[0] >= 0)
        close(ctl[0]);
    if (ctl[1] >= 0)
        close(ctl[1]);
    if (out_fd >= 0)
        close(out_fd);
    rx__strv_free(argv, argc);
    rx__free(envp);
    for (size_t i = 0; i < n_extra; i++)
        rx__free(extra[i]);
}

/* Run a chunk of command tasks: each task as run_task runs one (its own process group, output
 * file, time limit and exit status), one after the other, under this one supervisor; fills
 * sh->run with an entry per task that ran. It stops after a task stopped by a cancel (the
 * job's, or the daemon's after a failure), after a failure when the job stops at one, or at a
 * cancel that comes between two tasks or while a task's time limit stops it: the tasks after have
 * no entry, and the daemon puts them back in the queue or, the job being over, never runs them (as
 * for a chunk of function tasks). What saves per task is the daemon's side: one supervisor spawned,
 * one start and one end recorded, for the whole chunk. */
static void
run_command_chunk(shim *sh)
{
    spool_run_exit *run = &sh->run;
    uint64_t first = sh->idx;

    spool_run_exit_free(run);
    run->go = 1;
    run->first = first;
    run->count = sh->count;
    run->idx = rx__calloc((size_t)sh->count, sizeof(*run->idx));
    run->tasks = rx__calloc((size_t)sh->count, sizeof(*run->tasks));
    if (run->idx == NULL || run->tasks == NULL) {
        spool_run_exit_free(run);
        memset(run, 0, sizeof(*run));
        run_task(sh); /* the first alone: run_from_task records it, the daemon requeues the rest */
        return;
    }
    for (uint64_t k = 0; k < sh->count; k++) {
        int stop;

        if (k > 0) {
            sh->idx = first + k;
            sh->rec.go = 1;
            if (sh->canceled || cancel_pending(sh))
                break;
            if (task_paths(sh) != 0 || load_arg(sh) != 0) {
                sh->rec.state = RX_TASK_START_FAILED;
                sh->rec.exit_status = -1;
            } else {
                run_task(sh);
            }
        } else {
            run_task(sh);
        }
        stop = sh->rec.state == RX_TASK_STOPPED ||
               (sh->stop_on_failure && sh->rec.state != RX_TASK_OK);
        run->idx[run->n] = sh->idx;
        run->tasks[run->n++] = sh->rec;
        memset(&sh->rec, 0, sizeof(sh->rec));
        if (stop)
            break;
    }
    sh->idx = first;
}

/* The run's record from the task record of its first task (sh->rec): the run never started
 * (go 0: no entry), or its first task ended before the program could start. */
static void
run_from_task(shim *sh)
{
    spool_run_exit *run = &sh->run;

    spool_run_exit_free(run);
    run->go = sh->rec.go;
    run->first = sh->idx;
    run->count = sh->count;
    if (!sh->rec.go)
        return;
    run->idx = rx__malloc(sizeof(*run->idx));
    run->tasks = rx__malloc(sizeof(*run->tasks));
    if (run->idx == NULL || run->tasks == NULL)
        return; /* no entry: the daemon reads the first task as lost */
    run->idx[0] = sh->idx;
    run->tasks[0] = sh->rec;
    run->n = 1;
    memset(&sh->rec, 0, sizeof(sh->rec));
}

/* A blank shim (rxjob-shim --blank, spawned by the scheduler before its task is known): wait
 * on fd 3 for exec_local_assign's message and make it the argument vector: argv[0] stays,
 * the rest is what the daemon would have passed. 1 with *io_argc and *io_argv replaced (the
 * strings live in buf); 0 for end-of-file or anything else: the daemon never gave this shim a
 * task (it discarded it, or died), and it exits without a trace. */
static int
take_assignment(int *io_argc, char ***io_argv, char *buf, size_t buf_len, char **slots,
                size_t n_slots)
{
    unsigned char head[5];
    uint32_t len;
    size_t k = 1, off = 0;

    if (rx__read_full(SHIM_GO_FD, head, sizeof(head)) != (long)sizeof(head) || head[0] != 'a')
        return 0;
    len = rx__le32_get(head + 1);
    if (len == 0 || len > SHIM_ASSIGN_MAX || len > buf_len ||
        rx__read_full(SHIM_GO_FD, buf, len) != (long)len || buf[len - 1] != '\0')
        return 0;
    slots[0] = (*io_argv)[0];
    while (off < len && k + 1 < n_slots) {
        slots[k++] = buf + off;
        off += strlen(buf + off) + 1;
    }
    if (off != len)
        return 0;
    slots[k] = NULL;
    *io_argc = (int)k;
    *io_argv = slots;
    return 1;
}

/* After the assignment, the job's work may follow ("w", its length in 4 bytes little-endian,
 * the encoded work: exec_local_assign), so that no work file is read. 1 with *out_work (owned)
 * and *out_len; 0 when "c" (or anything else) comes next, which is left for wait_go: the work
 * is then read from JOB_DIR/work; -1 for a "w" that is cut off or too long (the daemon never
 * sends one: treated as end-of-file). */
static int
take_work(void **out_work, size_t *out_len)
{
    unsigned char head[5];
    uint32_t len;
    void *work;
    ssize_t n;

    do
        n = recv(SHIM_GO_FD, head, 1, MSG_PEEK);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == ENOTSOCK) {
        /* fd 3 is a file (a supervisor run by hand, tests/check_shim.sh): read, and step back
         * unless it is the work. */
        n = rx__read_full(SHIM_GO_FD, head, 1);
        if (n == 1 && head[0] != 'w')
            (void)lseek(SHIM_GO_FD, -1, SEEK_CUR);
        if (n != 1 || head[0] != 'w')
            return 0;
        n = rx__read_full(SHIM_GO_FD, head + 1, sizeof(head) - 1);
        if (n != (ssize_t)(sizeof(head) - 1))
            return -1;
    } else if (n != 1 || head[0] != 'w') {
        return 0;
    } else if (rx__read_full(SHIM_GO_FD, head, sizeof(head)) != (long)sizeof(head)) {
        return -1;
    }
    len = rx__le32_get(head + 1);
    if (len == 0 || len > WORK_MAX_BYTES || (work = rx__malloc(len)) == NULL)
        return -1;
    if (rx__read_full(SHIM_GO_FD, work, len) != (long)len) {
        rx__free(work);
        return -1;
    }
    *out_work = work;
    *out_len = len;
    return 1;
}

/* 1 if argv is a blank shim's: "--blank" and then only empty arguments (exec_local_spawn). */
static int
is_blank(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], SHIM_BLANK_ARG) != 0)
        return 0;
    for (int i = 2; i < argc; i++)
        if (argv[i][0] != '\0')
            return 0;
    return 1;
}

/* Once assigned, write the task into the blank shim's argument space (from argv[1] to the end of
 * its last, empty, argument: contiguous, as exec lays them out), so that ps(1) shows
 * "rxjob-shim --shim JOB_DIR INDEX" (cut to the room there is) instead of "--blank". */
static void
show_task(int argc, char **argv, char *const *task)
{
    char *start = argv[1];
    size_t room = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) - start);

    memset(start, 0, room);
    (void)snprintf(start, room, "%s %s %s", task[1], task[2], task[3]);
}

int
main(int argc, char **argv)
{
    static char assigned[SHIM_ASSIGN_MAX];
    char *assigned_argv[16];
    shim sh;
    sigset_t set;
    char **a;
    const char *idx_arg;
    int n_args, under_slurm, go = 1, rc = 0;
    uint64_t output_bytes = 0, result_bytes = 0;

    memset(&sh, 0, sizeof(sh));
    sh.sfd = -1;
    /* Nothing the daemon had open belongs here but fd 3; a stray inherited descriptor (a
     * listening socket, say) would otherwise live as long as the task. */
    (void)close_range(SHIM_GO_FD + 1, ~0U, 0);
    /* fd 3 talks to the daemon until the end ("e", "k"): the task must not have it. */
    (void)fcntl(SHIM_GO_FD, F_SETFD, FD_CLOEXEC);
    if (argc < 1)
        return SHIM_EXIT_BAD_ARGS;
    if (is_blank(argc, argv)) {
        int blank_argc = argc;
        char **blank_argv = argv;

        if (!take_assignment(&argc, &argv, assigned, sizeof(assigned), assigned_argv,
                             sizeof(assigned_argv) / sizeof(assigned_argv[0])) ||
            take_work(&sh.work_blob, &sh.work_blob_len) < 0)
            return 0;
        if (argc >= 4)
            show_task(blank_argc, blank_argv, argv);
    }
    /* "--shim" first is accepted (and written by rxjobd, and by the Slurm batch scripts older
     * rxjobd wrote as `rxjobd --shim ...`); six arguments, or eight with the output and result
     * limits (six: no output cap, results up to RX_RESULT_MAX_BYTES). */
    a = argv + 1;
    if (argc > 1 && strcmp(a[0], "--shim") == 0)
        a++;
    n_args = argc - (int)(a - argv);
    /* Under Slurm (exec_slurm.c) INDEX is "-": the array task's SLURM_ARRAY_TASK_ID, and no
     * "go" comes (the array is released only once its submission is durable). */
    under_slurm = (n_args == 6 || n_args == 8) && strcmp(a[1], "-") == 0;
    if (n_args == 10 && (parse_u64_arg(a[8], INT64_MAX, &sh.count) != 0 || sh.count == 0 ||
                         (strcmp(a[9], "0") != 0 && strcmp(a[9], "1") != 0))) {
        (void)fprintf(stderr, "rxjob-shim: bad COUNT or STOP_ON_FAILURE\n");
        return SHIM_EXIT_BAD_ARGS;
    }
    if (n_args == 10) {
        sh.stop_on_failure = a[9][0] == '1';
        n_args = 8;
    }
    idx_arg = under_slurm ? getenv("SLURM_ARRAY_TASK_ID") : n_args >= 6 ? a[1] : NULL;
    if ((n_args != 6 && n_args != 8) || a[0][0] != '/' || idx_arg == NULL ||
        parse_u64_arg(idx_arg, INT64_MAX, &sh.idx) != 0 ||
        parse_u64_arg(a[2], INT64_MAX, &sh.n_tasks) != 0 ||
        rx__parse_i64(a[3], 0, INT64_MAX / 2, &sh.timeout_ms) != RX_OK ||
        rx__parse_i64(a[4], 0, INT64_MAX / 2, &sh.grace_ms) != RX_OK ||
        (strcmp(a[5], "0") != 0 && strcmp(a[5], "1") != 0) ||
        (n_args == 8 && (parse_u64_arg(a[6], INT64_MAX, &output_bytes) != 0 ||
                         parse_u64_arg(a[7], INT64_MAX, &result_bytes) != 0))) {
        (void)fprintf(stderr, "usage: rxjob-shim [--shim] JOB_DIR INDEX N_TASKS TIMEOUT_MS "
                              "GRACE_MS HAS_ARGS [OUTPUT_BYTES RESULT_BYTES [COUNT "
                              "STOP_ON_FAILURE]] (run by rxjobd, not by hand)\n");
        return SHIM_EXIT_BAD_ARGS;
    }
    sh.output_bytes = output_bytes;
    sh.result_bytes = result_bytes > 0 ? result_bytes : RX_RESULT_MAX_BYTES;
    sh.job_dir = a[0];
    sh.has_args = a[5][0] == '1';
    sh.under_slurm = under_slurm;
    apply_task_umask();
    /* Blocked already when the daemon spawned us; blocking again covers a shim run otherwise. */
    cancel_sigset(&set);
    (void)sigprocmask(SIG_BLOCK, &set, NULL);
    sh.sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    /* A SIGPIPE while writing a record must not kill the shim before the record is written. */
    (void)signal(SIGPIPE, SIG_IGN);

    /* Read the work and the argument while the daemon commits the start. */
    if (sh.sfd >= 0)
        (void)prepare_task(&sh);
    if (sh.sfd < 0) {
        sh.rec.go = 1;
        sh.rec.state = RX_TASK_START_FAILED;
        sh.rec.exit_status = -1;
        (void)set_error(&sh, "supervisor: signalfd failed: %s", strerror(errno));
    } else if (!under_slurm && (go = wait_go(&sh)) < 0) {
        /* Spawned ahead of a task it was never given: nothing to record. */
        close(SHIM_GO_FD);
        close(sh.sfd);
        store_work_free(&sh.work);
        rx__free(sh.work_blob);
        rx__free(sh.arg);
        spool_exit_free(&sh.rec);
        return 0;
    } else if (!under_slurm && go == 0) {
        /* Never told to start: the task did not run, and may be started again. */
        sh.rec.go = 0;
        sh.rec.state = RX_TASK_NOT_RUN;
        sh.rec.exit_status = -1;
        rx__free(sh.rec.error); /* whatever prepare_task found: it was never to run */
        sh.rec.error = NULL;
    } else if (cancel_pending(&sh)) {
        sh.rec.go = 1;
        sh.rec.state = RX_TASK_NOT_RUN;
        sh.rec.exit_status = -1;
        (void)set_error(&sh, "not run: the job stopped before the task started");
    } else {
        sh.rec.go = 1;
        sh.went = 1;
        remove_stale_record(&sh);
        if (sh.count > 0 && sh.loaded && sh.work.kind == RX_WORK_FUNCTION && sh.output_bytes == 0)
            run_chunk(&sh);
        else if (sh.count > 1 && sh.loaded && sh.work.kind == RX_WORK_COMMAND)
            run_command_chunk(&sh);
        else
            run_task(&sh);
    }
    if (sh.count > 0 && !sh.went)
        run_from_task(&sh); /* never started (go 0), or stopped or failed before the start */
    else if (sh.count > 0 && sh.run.count == 0)
        run_from_task(&sh); /* run_task ran the first (the work cannot run as a chunk) */
    /* After "go", the daemon that sent it records the end durably itself ("k"): the record's two
     * fsyncs are needed only when it does not (it died meanwhile: the record is what the next
     * one reads). */
    if (sh.count > 0) {
        /* A run's record: on fd 3 to the daemon that said "go", as a task's; else, or without
         * its "k", written durably. */
        char *text = NULL;
        size_t len = 0;

        if (!(sh.went && spool_run_exit_format(&sh.run, &text, &len) == RX_OK &&
              end_acked_text(text, len)) &&
            spool_run_exit_write(sh.job_dir, &sh.run) != RX_OK)
            rc = 1; /* no record: the daemon reports the run's tasks as lost */
        rx__free(text);
    } else if (sh.went && !under_slurm) {
        if (!end_acked(&sh.rec) && spool_exit_write(sh.job_dir, sh.idx, &sh.rec) != RX_OK)
            rc = 1; /* no record: the daemon reports the task as lost */
    } else if (spool_exit_write(sh.job_dir, sh.idx, &sh.rec) != RX_OK) {
        rc = 1; /* no record: the daemon reports the task as lost */
    }
    close(SHIM_GO_FD);
    if (sh.went && sh.work.kind == RX_WORK_FUNCTION && sh.arg_path[0] != '\0') {
        (void)unlink(sh.arg_path);
        (void)unlink(sh.error_path);
    }
    if (sh.sfd >= 0)
        close(sh.sfd);
    store_work_free(&sh.work);
    rx__free(sh.work_blob);
    rx__free(sh.arg);
    spool_exit_free(&sh.rec);
    spool_run_exit_free(&sh.run);
    return rc;
}
