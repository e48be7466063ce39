/*
 * spawn.c - start, watch, signal and reap task processes (see spawn.h).
 *
 * Commands start with posix_spawn (glibc's uses clone(CLONE_VM|CLONE_VFORK), so a caller with a
 * large heap pays no page-table copy), and the exec error comes back as the return value, so
 * "no such program" is known at once. Workers for C functions must run the caller's code, so they
 * are forked.
 */
#define _GNU_SOURCE
#include "exec/spawn.h"

#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int
rx__fd_above_stdio(int fd)
{
    int moved;

    if (fd < 0 || fd > 2)
        return fd;
    moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return moved;
}

static pthread_mutex_t sigchld_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned sigchld_holders;
static struct sigaction sigchld_saved;
static int sigchld_changed;

void
rx__sigchld_hold(void)
{
    struct sigaction now;

    pthread_mutex_lock(&sigchld_lock);
    if (sigchld_holders++ == 0 && sigaction(SIGCHLD, NULL, &now) == 0 &&
        (now.sa_handler == SIG_IGN || (now.sa_flags & SA_NOCLDWAIT) != 0)) {
        struct sigaction dfl;

        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigchld_saved = now;
        sigchld_changed = sigaction(SIGCHLD, &dfl, NULL) == 0;
        rx__log(RX_LOG_DEBUG, "exec: SIGCHLD was ignored; set to the default while tasks run");
    }
    pthread_mutex_unlock(&sigchld_lock);
}

void
rx__sigchld_release(void)
{
    pthread_mutex_lock(&sigchld_lock);
    if (sigchld_holders > 0 && --sigchld_holders == 0 && sigchld_changed) {
        (void)sigaction(SIGCHLD, &sigchld_saved, NULL);
        sigchld_changed = 0;
    }
    pthread_mutex_unlock(&sigchld_lock);
}

static int
pidfd_open_checked(pid_t pid)
{
#ifdef SYS_pidfd_open
    long fd = syscall(SYS_pidfd_open, pid, 0);

    if (fd >= 0) {
        (void)fcntl((int)fd, F_SETFD, FD_CLOEXEC); /* pidfds are close-on-exec already */
        return rx__fd_above_stdio((int)fd);
    }
#else
    (void)pid;
#endif
    return -1;
}

rx_err
rx__spawn(const rx__spawn_req *req, rx__proc *out_proc, int *out_errno)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t all, none;
    pid_t pid = 0;
    int rc;

    *out_errno = 0;
    rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0) {
        *out_errno = rc;
        return RX_ESYSTEM;
    }
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) {
        posix_spawn_file_actions_destroy(&fa);
        *out_errno = rc;
        return RX_ESYSTEM;
    }
    sigfillset(&all);
    sigemptyset(&none);
    rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                             POSIX_SPAWN_SETSIGMASK);
    if (rc == 0)
        rc = posix_spawnattr_setpgroup(&attr, 0);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0)
        rc = posix_spawn_file_actions_addopen(
            &fa, 0, req->stdin_path ? req->stdin_path : "/dev/null", O_RDONLY, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, req->out_fd, 1);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, req->out_fd, 2);
    if (rc == 0 && req->cwd != NULL)
        rc = posix_spawn_file_actions_addchdir_np(&fa, req->cwd);
    if (rc == 0)
        rc = posix_spawnp(&pid, req->argv[0], &fa, &attr, (char *const *)req->argv, req->envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        *out_errno = rc;
        return RX_ESYSTEM;
    }
    out_proc->pid = pid;
    out_proc->pidfd = pidfd_open_checked(pid);
    return RX_OK;
}

pid_t
rx__fork_worker(rx__proc *out_proc)
{
    pid_t parent = getpid();
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        (void)setpgid(0, 0);
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) /* the parent died before prctl: nobody waits for us */
            _exit(127);
        return 0;
    }
    /* Both sides set the group, so it exists before either goes on (the classic shell race). */
    if (setpgid(pid, pid) != 0 && errno != EACCES && errno != ESRCH)
        rx__log(RX_LOG_DEBUG, "spawn: setpgid %d failed: %s, ignoring", (int)pid, strerror(errno));
    out_proc->pid = pid;
    out_proc->pidfd = pidfd_open_checked(pid);
    return pid;
}

int
rx__proc_signal_group(const rx__proc *p, int sig)
{
    if (p->pid <= 0) {
        errno = ESRCH;
        return -1;
    }
    return kill(-p->pid, sig);
}

int
rx__proc_exited(const rx__proc *p)
{
    siginfo_t info;

    memset(&info, 0, sizeof(info));
    if (waitid(P_PID, (id_t)p->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno == ECHILD; /* nothing to wait for: treat as gone */
    return info.si_pid == p->pid;
}

rx_err
rx__proc_reap(rx__proc *p, int *out_wstatus)
{
    int wstatus = 0;
    pid_t got;

    if (p->pid <= 0)
        return RX_EINVAL;
    /* The leader is a zombie or alive, so its pid (the group id) is still ours to signal. */
    (void)kill(-p->pid, SIGKILL);
    do {
        got = waitpid(p->pid, &wstatus, 0);
    } while (got < 0 && errno == EINTR);
    if (p->pidfd >= 0)
        close(p->pidfd);
    p->pidfd = -1;
    p->pid = 0;
    if (got < 0)
        return RX_ESYSTEM;
    *out_wstatus = wstatus;
    return RX_OK;
}

const char *
rx__signal_name(int sig)
{
    static const char *const names[] = {
        [SIGHUP] = "SIGHUP",       [SIGINT] = "SIGINT",   [SIGQUIT] = "SIGQUIT",
        [SIGILL] = "SIGILL",       [SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT",
        [SIGBUS] = "SIGBUS",       [SIGFPE] = "SIGFPE",   [SIGKILL] = "SIGKILL",
        [SIGUSR1] = "SIGUSR1",     [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
        [SIGPIPE] = "SIGPIPE",     [SIGALRM] = "SIGALRM", [SIGTERM] = "SIGTERM",
        [SIGCHLD] = "SIGCHLD",     [SIGCONT] = "SIGCONT", [SIGSTOP] = "SIGSTOP",
        [SIGTSTP] = "SIGTSTP",     [SIGTTIN] = "SIGTTIN", [SIGTTOU] = "SIGTTOU",
        [SIGURG] = "SIGURG",       [SIGXCPU] = "SIGXCPU", [SIGXFSZ] = "SIGXFSZ",
        [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF", [SIGWINCH] = "SIGWINCH",
        [SIGIO] = "SIGIO",         [SIGPWR] = "SIGPWR",   [SIGSYS] = "SIGSYS",
    };

    if (sig > 0 && (size_t)sig < RX__ARRAY_LEN(names) && names[sig] != NULL)
        return names[sig];
    return "SIG?";
}

void
rx__wait_status_text(int wstatus, char *buf, size_t len)
{
    if (WIFEXITED(wstatus))
        (void)snprintf(buf, len, "exit status %d", WEXITSTATUS(wstatus));
    else if (WIFSIGNALED(wstatus))
        (void)snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(wstatus),
                       rx__signal_name(WTERMSIG(wstatus)),
                       WCOREDUMP(wstatus) ? ", core dumped" : "");
    else
        (void)snprintf(buf, len, "wait status 0x%x", (unsigned)wstatus);
}

int
rx__proc_stat(pid_t pid, char *out_state, pid_t *out_session, uint64_t *out_start)
{
    char path[64], buf[1024];
    char *p, *end;
    long long session = -1;
    ssize_t n;
    int fd;

    (void)snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* Field 2 is "(comm)" and comm may hold spaces and parentheses: count from the last ')'.
     * After it come field 3 (state), ... 6 (session), ... 22 (starttime). */
    p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    p++;
    for (int field = 3; field < 22; field++) {
        while (*p == ' ')
            p++;
        if (field == 3 && out_state != NULL)
            *out_state = *p;
        if (field == 6) {
            errno = 0;
            session = strtoll(p, &end, 10);
            if (errno != 0 || end == p)
                return -1;
        }
        while (*p != ' ' && *p != '\0')
            p++;
        if (*p == '\0')
            return -1;
    }
    errno = 0;
    *out_start = strtoull(p, &end, 10);
    if (errno != 0 || end == p)
        return -1;
    if (out_session != NULL)
        *out_session = (pid_t)session;
    return 0;
}

int
rx__proc_start_time(pid_t pid, uint64_t *out_start)
{
    return rx__proc_stat(pid, NULL, NULL, out_start);
}

/* 1 if uid is pid's real or saved uid (/proc/PID/status): what kill(2) asks of a sender
 * without privileges. Reads into a stack buffer: no allocation. */
static int
uid_may_signal(pid_t pid, uid_t uid)
{
    char path[64], buf[4096];
    const char *p;
    unsigned long v[3];
    ssize_t n;
    int fd;

    (void)snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    p = strstr(buf, "\nUid:");
    if (p == NULL)
        return 0;
    p += 5;
    for (int i = 0; i < 3; i++) { /* real, effective, saved */
        char *end;

        while (*p == ' ' || *p == '\t')
            p++;
        errno = 0;
        v[i] = strtoul(p, &end, 10);
        if (errno != 0 || end == p)
            return 0;
        p = end;
    }
    return v[0] == (unsigned long)uid || v[2] == (unsigned long)uid;
}

int
rx__kill_session(pid_t sid, uint64_t min_start, uid_t only_uid)
{
    int killed = 0;

    for (int pass = 0; pass < 20; pass++) {
        char buf[8192];
        int found = 0;
        long n;
        int fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0)
            return killed;
        while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
            for (long off = 0; off < n;) {
                const struct rx_dirent64 {
                    uint64_t ino;
                    int64_t off;
                    unsigned short reclen;
                    unsigned char type;
                    char name[];
                } *d = (const void *)(buf + off);
                pid_t sid_of = 0;
                uint64_t start = 0, again = 0;
                char state = 0;
                char *end;
                long pid, pfd;

                off += d->reclen;
                if (d->name[0] < '1' || d->name[0] > '9')
                    continue;
                pid = strtol(d->name, &end, 10);
                if (*end != '\0' || pid <= 1 || pid == (long)getpid() ||
                    rx__proc_stat((pid_t)pid, &state, &sid_of, &start) != 0)
                    continue;
                if (sid_of != sid || start < min_start || state == 'Z' || state == 'X')
                    continue;
                /* Through a pidfd, checked again once opened: a pid reused meanwhile is never
                 * signalled. */
                pfd = syscall(SYS_pidfd_open, (pid_t)pid, 0);
                if (pfd < 0)
                    continue;
                if (rx__proc_stat((pid_t)pid, NULL, &sid_of, &again) == 0 && again == start &&
                    sid_of == sid &&
                    (only_uid == (uid_t)-1 || uid_may_signal((pid_t)pid, only_uid)) &&
                    syscall(SYS_pidfd_send_signal, (int)pfd, SIGKILL, NULL, 0) == 0)
                    found++;
                close((int)pfd);
            }
        }
        close(fd);
        if (found == 0)
            break;
        killed += found;
    }
    return killed;
}

int
rx__wait_child_deadline(pid_t pid, int64_t timeout_ms, int *out_wstatus)
{
    struct timespec now, end;
    int pidfd = pidfd_open_checked(pid);
    int killed = 0;
    pid_t got;

    (void)clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += (time_t)(timeout_ms / 1000);
    end.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    for (;;) {
        int64_t left_ms;

        got = waitpid(pid, out_wstatus, WNOHANG);
        if (got == pid || (got < 0 && errno != EINTR))
            break;
        if (got < 0)
            continue;
        (void)clock_gettime(CLOCK_MONOTONIC, &now);
        left_ms = (int64_t)(end.tv_sec - now.tv_sec) * 1000 + (end.tv_nsec - now.tv_nsec) / 1000000;
        if (left_ms <= 0) {
            (void)kill(pid, SIGKILL); /* our child: the pid is still its until reaped */
            killed = 1;
            while ((got = waitpid(pid, out_wstatus, 0)) < 0 && errno == EINTR) {
            }
            break;
        }
        if (pidfd >= 0) {
            struct pollfd pfd = {.fd = pidfd, .events = POLLIN, .revents = 0};

            (void)poll(&pfd, 1, left_ms > 1000 ? 1000 : (int)left_ms);
        } else {
            struct timespec ts = {0, 10 * 1000000L}; /* no pidfd: look every 10 ms */

            (void)nanosleep(&ts, NULL);
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    if (got != pid)
        return -1;
    return killed;
}

/* In the child: become uid:gid with groups only, and make sure there is no way back. */
static int
drop_to(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups)
{
    uid_t ru, eu, su;
    gid_t rg, eg, sg;

    if (setgroups(n_groups, n_groups > 0 ? groups : NULL) != 0 || setresgid(gid, gid, gid) != 0 ||
        setresuid(uid, uid, uid) != 0)
        return -1;
    if (setuid(0) == 0 || (gid != 0 && setgid(0) == 0))
        return -1;
    if (getresuid(&ru, &eu, &su) != 0 || ru != uid || eu != uid || su != uid ||
        getresgid(&rg, &eg, &sg) != 0 || rg != gid || eg != gid || sg != gid)
        return -1;
    return 0;
}

int
rx__run_as(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups, rx__as_fn fn, void *arg,
           int64_t timeout_ms)
{
    sigset_t all, old;
    int status = 0, saved;
    pid_t pid;

    if (uid == 0 || fn == NULL || (n_groups > 0 && groups == NULL)) {
        errno = EINVAL;
        return -1;
    }
    sigfillset(&all);
    (void)pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0) {
        int rc;

        if (drop_to(uid, gid, groups, n_groups) != 0)
            _exit(126);
        rc = fn(arg);
        _exit(rc >= 0 && rc <= 125 ? rc : 125);
    }
    saved = errno;
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        errno = saved;
        return -1;
    }
    switch (rx__wait_child_deadline(pid, timeout_ms, &status)) {
    case 0:
        break;
    case 1:
        errno = ETIMEDOUT;
        return -1;
    default:
        errno = ECHILD;
        return -1;
    }
    if (!WIFEXITED(status)) {
        errno = ECHILD;
        return -1;
    }
    if (WEXITSTATUS(status) == 126) {
        errno = EPERM;
        return -1;
    }
    return WEXITSTATUS(status);
}
