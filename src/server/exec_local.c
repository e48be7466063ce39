/*
 * exec_local.c - the local executor: spawning, adopting and signalling task supervisors
 * ("shims"); the shim itself is src/shim/shim.c. See exec_local.h and docs/engine.md.
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
 */
#define _GNU_SOURCE
#include "server/exec_local.h"

#include "core/internal.h"
#include "exec/spawn.h"
#include "store/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3 /* linux/wait.h; glibc 2.36's idtype_t does not name it yet */
#endif

extern char **environ;

#define SHIM_GO_FD 3 /* the supervisor's end of the "go" socket (src/shim/shim.c) */

/* The signals that mean "stop the task": blocked from the shim's first instruction (the daemon
 * spawns it with them blocked), read through a signalfd (src/shim/shim.c has the same set). */
static void
cancel_sigset(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGUSR1);
}

/* ---------------------------------------------------------------------------------------------
 * Daemon side
 * ------------------------------------------------------------------------------------------- */

int
exec_local_proc_start(pid_t pid, uint64_t *out_start)
{
    return rx__proc_start_time(pid, out_start);
}

rx_err
exec_local_shim_open(const char *self_exe, const char *shim_exe, char **out_path, int *out_fd,
                     char *errbuf, size_t errlen)
{
    const char *env = getenv(EXEC_SHIM_ENV);
    char path[PATH_MAX], real[PATH_MAX];
    struct stat st;
    int fd;

    *out_path = NULL;
    *out_fd = -1;
    if (shim_exe != NULL) {
        if (snprintf(path, sizeof(path), "%s", shim_exe) >= (int)sizeof(path))
            goto too_long;
    } else if (env != NULL && env[0] != '\0') {
        if (snprintf(path, sizeof(path), "%s", env) >= (int)sizeof(path))
            goto too_long;
    } else {
        const char *slash = self_exe != NULL ? strrchr(self_exe, '/') : NULL;
        int dir_len = slash != NULL ? (int)(slash - self_exe) : 1;

        if (snprintf(path, sizeof(path), "%.*s/%s", dir_len, slash != NULL ? self_exe : ".",
                     EXEC_SHIM_NAME) >= (int)sizeof(path))
            goto too_long;
    }
    if (realpath(path, real) == NULL) {
        (void)snprintf(errbuf, errlen, "the task supervisor '%s' cannot be found: %s", path,
                       strerror(errno));
        return RX_EINVAL;
    }
    /* Above fd 3 too: the supervisor's spawn puts its own files on 0..3 (exec_local_spawn), and
     * /proc/self/fd/N is looked up in the child after those. */
    fd = open(real, O_PATH | O_CLOEXEC);
    if (fd >= 0 && fd <= SHIM_GO_FD) {
        int moved = fcntl(fd, F_DUPFD_CLOEXEC, SHIM_GO_FD + 1);

        close(fd);
        fd = moved;
    }
    if (fd < 0 || fstat(fd, &st) != 0 || access(real, X_OK) != 0 ||
        (!S_ISREG(st.st_mode) && (errno = EINVAL) != 0)) {
        int saved = errno;

        if (fd >= 0)
            close(fd);
        (void)snprintf(errbuf, errlen, "the task supervisor '%s' is not an executable file: %s",
                       real, strerror(saved));
        return RX_EINVAL;
    }
    *out_path = rx__strdup(real);
    if (*out_path == NULL) {
        close(fd);
        return RX_ENOMEM;
    }
    *out_fd = fd;
    return RX_OK;
too_long:
    (void)snprintf(errbuf, errlen, "the task supervisor's path is too long");
    return RX_EINVAL;
}

rx_err
exec_local_spawn(const exec_shim_req *req, exec_shim *out_shim, int *out_errno)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t blocked, all;
    char idx[32], n_tasks[32], timeout[32], grace[32];
    char *argv[11];
    char output_bytes[32], result_bytes[32], exe[64];
    int sv[2] = {-1, -1};
    int child_fd = -1;
    pid_t pid = 0;
    int rc;

    *out_errno = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        *out_errno = errno;
        return RX_ESYSTEM;
    }
    /* Neither end may sit on 0..2 (a daemon started with stdio closed), where the child's
     * /dev/null would replace it; and dup2(fd, fd) would leave close-on-exec set, so the
     * child's end must not be fd 3 either. */
    sv[0] = rx__fd_above_stdio(sv[0]);
    sv[1] = rx__fd_above_stdio(sv[1]);
    if (sv[0] < 0 || sv[1] < 0) {
        *out_errno = errno;
        if (sv[0] >= 0)
            close(sv[0]);
        if (sv[1] >= 0)
            close(sv[1]);
        return RX_ESYSTEM;
    }
    child_fd = sv[1];
    if (child_fd == SHIM_GO_FD) {
        child_fd = fcntl(sv[1], F_DUPFD_CLOEXEC, SHIM_GO_FD + 1);
        close(sv[1]);
        sv[1] = child_fd;
        if (child_fd < 0) {
            *out_errno = errno;
            close(sv[0]);
            return RX_ESYSTEM;
        }
    }
    (void)snprintf(idx, sizeof(idx), "%" PRIu64, req->idx);
    (void)snprintf(n_tasks, sizeof(n_tasks), "%" PRIu64, req->n_tasks);
    (void)snprintf(timeout, sizeof(timeout), "%" PRId64, req->timeout_ms);
    (void)snprintf(grace, sizeof(grace), "%" PRId64, req->grace_ms);
    argv[0] = (char *)req->shim_exe;
    argv[1] = "--shim";
    argv[2] = (char *)req->job_dir;
    argv[3] = idx;
    argv[4] = n_tasks;
    argv[5] = timeout;
    argv[6] = grace;
    argv[7] = req->has_args ? "1" : "0";
    (void)snprintf(output_bytes, sizeof(output_bytes), "%" PRIu64, req->output_bytes);
    (void)snprintf(result_bytes, sizeof(result_bytes), "%" PRIu64, req->result_bytes);
    argv[8] = output_bytes;
    argv[9] = result_bytes;
    argv[10] = NULL;
    /* The binary opened at start (exec_local_shim_open), which stays executable when its file
     * is replaced or removed (a rebuild, an upgrade); argv[0] still names the path. */
    (void)snprintf(exe, sizeof(exe), "/proc/self/fd/%d", req->shim_fd);

    rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0)
        goto out_fds;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) {
        posix_spawn_file_actions_destroy(&fa);
        goto out_fds;
    }
    cancel_sigset(&blocked);
    sigfillset(&all);
    rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                             POSIX_SPAWN_SETSIGDEF);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&attr, &blocked);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (rc == 0)
        rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDWR, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, 0, 1);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, 0, 2);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, child_fd, SHIM_GO_FD);
    if (rc == 0)
        rc = posix_spawn(&pid, req->shim_fd >= 0 ? exe : req->shim_exe, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
out_fds:
    close(child_fd);
    if (rc != 0) {
        close(sv[0]);
        *out_errno = rc;
        return RX_ESYSTEM;
    }
    out_shim->pid = pid;
    out_shim->go_fd = sv[0];
    out_shim->pidfd = rx__fd_above_stdio(pidfd_open(pid, 0));
    out_shim->start_time = 0;
    /* The shim cannot have exited yet (it waits for "go"), unless it was killed: then its start
     * time stays 0, which no live process has, and recovery treats it as gone. */
    (void)exec_local_proc_start(pid, &out_shim->start_time);
    return RX_OK;
}

void
exec_local_go(exec_shim *sh)
{
    if (sh->go_fd < 0)
        return;
    /* MSG_NOSIGNAL: a shim that died must not take the daemon down with SIGPIPE. */
    if (send(sh->go_fd, "g", 1, MSG_NOSIGNAL) != 1)
        rx__log(RX_LOG_DEBUG, "exec: go to supervisor %ld failed: %s", (long)sh->pid,
                strerror(errno));
    close(sh->go_fd);
    sh->go_fd = -1;
}

void
exec_local_abandon(exec_shim *sh)
{
    if (sh->go_fd >= 0)
        close(sh->go_fd);
    sh->go_fd = -1;
}

int
exec_local_signal(const exec_shim *sh, int sig)
{
    if (sh->pidfd >= 0)
        return pidfd_send_signal(sh->pidfd, sig, NULL, 0);
    /* Without a pidfd the pid is checked against the recorded start time first. */
    if (sh->pid > 0) {
        uint64_t start;

        if (exec_local_proc_start(sh->pid, &start) == 0 && start == sh->start_time)
            return kill(sh->pid, sig);
    }
    errno = ESRCH;
    return -1;
}

void
exec_local_release(exec_shim *sh)
{
    siginfo_t info;

    /* Reaps only this very process, and only if it is our child (an adopted shim is reaped by
     * init or a subreaper): ECHILD is the expected answer then. */
    if (sh->pidfd >= 0) {
        memset(&info, 0, sizeof(info));
        (void)waitid((idtype_t)P_PIDFD, (id_t)sh->pidfd, &info, WEXITED | WNOHANG);
        close(sh->pidfd);
    } else if (sh->pid > 0) {
        (void)waitpid(sh->pid, NULL, WNOHANG);
    }
    sh->pidfd = -1;
    sh->pid = 0;
}

void
exec_local_wait_abandoned(exec_shim *sh)
{
    siginfo_t info;

    if (sh->pidfd >= 0) {
        memset(&info, 0, sizeof(info));
        while (waitid((idtype_t)P_PIDFD, (id_t)sh->pidfd, &info, WEXITED) != 0 && errno == EINTR) {
        }
        close(sh->pidfd);
    } else if (sh->pid > 0) {
        while (waitpid(sh->pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    sh->pidfd = -1;
    sh->pid = 0;
}

int
exec_local_adopt(pid_t pid, uint64_t start_time, exec_shim *out_shim)
{
    uint64_t now_start;
    int fd;

    if (pid <= 0 || start_time == 0)
        return 0;
    /* Open first, check after: if the pid was reused before pidfd_open, the start time differs;
     * if it is reused after, the pidfd still names the process we checked. */
    fd = rx__fd_above_stdio(pidfd_open(pid, 0));
    if (fd < 0)
        return 0;
    if (exec_local_proc_start(pid, &now_start) != 0 || now_start != start_time) {
        close(fd);
        return 0;
    }
    out_shim->pid = pid;
    out_shim->pidfd = fd;
    out_shim->start_time = start_time;
    out_shim->go_fd = -1;
    return 1;
}

void
exec_local_kill_orphan(const char *job_dir, uint64_t idx)
{
    char path[PATH_MAX];
    void *data = NULL;
    size_t len = 0;
    long long pid = 0;
    unsigned long long start = 0;
    uint64_t now_start;
    char *end;

    if (spool_task_path(job_dir, idx, ".pid", path, sizeof(path)) != 0 ||
        spool_read_file(path, 256, &data, &len) != RX_OK)
        return;
    errno = 0;
    pid = strtoll(data, &end, 10);
    if (errno == 0 && end != data && *end == ' ')
        start = strtoull(end + 1, NULL, 10);
    rx__free(data);
    if (pid <= 1 || pid > INT32_MAX || start == 0)
        return;
    /* A live leader must be the task itself. A gone leader whose group lives on cannot have had
     * its number reused (a pid stays taken while it names a group), so the group is the task's. */
    if (exec_local_proc_start((pid_t)pid, &now_start) == 0 && now_start != start)
        return;
    if (kill(-(pid_t)pid, SIGKILL) == 0)
        rx__log(RX_LOG_INFO, "exec: killed the orphaned process group %lld of task %" PRIu64, pid,
                idx);
    (void)unlink(path);
}
