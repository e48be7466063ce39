/*
 * exec_local.c - the local executor: spawning, adopting and signalling task supervisors
 * ("shims"), and the shim itself (engine_shim_main). See exec_local.h and docs/engine.md.
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
#include "exec/argv.h"
#include "exec/spawn.h"
#include "server/engine.h"
#include "store/spool.h"
#include "store/work.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3 /* linux/wait.h; glibc 2.36's idtype_t does not name it yet */
#endif

extern char **environ;

#define SHIM_GO_FD         3
#define WORK_MAX_BYTES     ((size_t)64 * 1024 * 1024) /* argv + env + stdin limits, with room */
#define ERROR_MAX_BYTES    4096
#define POLL_NO_PIDFD_MS   20
#define SHIM_EXIT_BAD_ARGS 2

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

/* ---------------------------------------------------------------------------------------------
 * Daemon side
 * ------------------------------------------------------------------------------------------- */

int
exec_local_proc_start(pid_t pid, uint64_t *out_start)
{
    char path[64], buf[1024];
    char *p, *end;
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
     * After it come field 3 (state) ... field 22 (starttime): skip 19 fields. */
    p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    p++;
    for (int field = 3; field < 22; field++) {
        while (*p == ' ')
            p++;
        while (*p != ' ' && *p != '\0')
            p++;
        if (*p == '\0')
            return -1;
    }
    errno = 0;
    *out_start = strtoull(p, &end, 10);
    if (errno != 0 || end == p)
        return -1;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Tasks of other users (rxjobd --system)
 *
 * A root daemon runs each task as the user who submitted it. The shim is started with the user's
 * credentials, so the task and its supervisor are the user's processes from their first
 * instruction, and the job directory is given to the user so the shim can write there
 * (spool_give_job_dir); the daemon reads back what is there as untrusted input (spool.h).
 * ------------------------------------------------------------------------------------------- */

#define USER_BUF_MAX    ((size_t)1 << 20) /* getpwuid_r buffer, bytes, at most */
#define USER_ENV_MAX    7                 /* HOME, USER, LOGNAME, SHELL, PATH, umask, NULL */
#define USER_GROUPS_CAP 65536             /* supplementary groups at most (NGROUPS_MAX) */
#define USER_PATH       "/usr/local/bin:/usr/bin:/bin" /* login.defs' ENV_PATH for users */

/* One user's credentials and the environment its shim starts with. */
typedef struct exec_user {
    uid_t uid;
    gid_t gid;
    gid_t *groups; /* supplementary groups, the primary one included (getgrouplist) */
    int n_groups;
    char *env[USER_ENV_MAX];
} exec_user;

int
exec_local_as_user(uid_t uid)
{
    return geteuid() == 0 && uid != 0;
}

static void
user_free(exec_user *u)
{
    rx__free(u->groups);
    for (size_t i = 0; i < USER_ENV_MAX; i++)
        rx__free(u->env[i]);
    memset(u, 0, sizeof(*u));
}

/* Look the user up: uid, primary gid, supplementary groups, and the shim's environment: HOME,
 * USER, LOGNAME and SHELL from the passwd entry (SHELL /bin/sh when it names none, as login(1)
 * does), PATH as login(1) gives users (USER_PATH), and the daemon's task umask; nothing else of
 * the daemon's. The task's environment is this, overridden by the job's own (so a job's PATH
 * wins in the task), but the shim looks the command up in this PATH. 0, or -1 with *out_errno
 * and why. */
static int
user_lookup(uid_t uid, exec_user *out, int *out_errno, char *why, size_t why_len)
{
    struct passwd pw, *found = NULL;
    long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t buf_len = hint > 0 ? (size_t)hint : 16384;
    char *buf = NULL;
    const char *umask_env = getenv(ENGINE_TASK_UMASK_ENV);
    int rc, n = 0, k = 0;

    memset(out, 0, sizeof(*out));
    for (;;) {
        buf = rx__malloc(buf_len);
        if (buf == NULL) {
            rc = ENOMEM;
            break;
        }
        rc = getpwuid_r(uid, &pw, buf, buf_len, &found);
        if (rc != ERANGE || buf_len >= USER_BUF_MAX)
            break;
        rx__free(buf);
        buf = NULL;
        buf_len *= 2;
    }
    if (rc != 0 || found == NULL) {
        *out_errno = rc != 0 ? rc : ENOENT;
        if (rc != 0 && rc != ENOENT && rc != ESRCH)
            (void)snprintf(why, why_len, "look up uid %lu in the passwd database failed: %s",
                           (unsigned long)uid, strerror(rc));
        else
            (void)snprintf(why, why_len,
                           "no user with uid %lu in the passwd database: a task is "
                           "never run as root for another user",
                           (unsigned long)uid);
        rx__free(buf);
        return -1;
    }
    out->uid = pw.pw_uid;
    out->gid = pw.pw_gid;
    /* getgrouplist says how many there are when the array is too small. */
    for (n = 32;;) {
        int want = n;

        out->groups = rx__malloc((size_t)want * sizeof(gid_t));
        if (out->groups == NULL) {
            *out_errno = ENOMEM;
            (void)snprintf(why, why_len, "out of memory");
            goto fail;
        }
        if (getgrouplist(pw.pw_name, pw.pw_gid, out->groups, &n) >= 0)
            break;
        rx__free(out->groups);
        out->groups = NULL;
        if (n <= want)
            n = want * 2;
        if (n > USER_GROUPS_CAP) {
            *out_errno = E2BIG;
            (void)snprintf(why, why_len, "user '%s' has more than %d groups", pw.pw_name,
                           USER_GROUPS_CAP);
            goto fail;
        }
    }
    out->n_groups = n;
    out->env[k++] = rx__env_entry("HOME", "%s", pw.pw_dir != NULL ? pw.pw_dir : "/");
    out->env[k++] = rx__env_entry("USER", "%s", pw.pw_name);
    out->env[k++] = rx__env_entry("LOGNAME", "%s", pw.pw_name);
    out->env[k++] = rx__env_entry(
        "SHELL", "%s", pw.pw_shell != NULL && pw.pw_shell[0] != '\0' ? pw.pw_shell : "/bin/sh");
    out->env[k++] = rx__env_entry("PATH", "%s", USER_PATH);
    if (umask_env != NULL)
        out->env[k++] = rx__env_entry(ENGINE_TASK_UMASK_ENV, "%s", umask_env);
    for (int i = 0; i < k; i++) {
        if (out->env[i] == NULL) {
            *out_errno = ENOMEM;
            (void)snprintf(why, why_len, "out of memory");
            goto fail;
        }
    }
    rx__free(buf);
    return 0;
fail:
    rx__free(buf);
    user_free(out);
    return -1;
}

/* What failed in the child before exec: one of these and the errno, through the error pipe. */
enum child_step {
    STEP_SETSID = 1,
    STEP_SIGNALS,
    STEP_STDIO,
    STEP_SETGROUPS,
    STEP_SETGID,
    STEP_SETUID,
    STEP_CHECK,
    STEP_EXEC
};

static const char *
step_name(int step)
{
    switch (step) {
    case STEP_SETSID:
        return "setsid";
    case STEP_SIGNALS:
        return "reset signals";
    case STEP_STDIO:
        return "set up fds 0..3";
    case STEP_SETGROUPS:
        return "setgroups";
    case STEP_SETGID:
        return "setgid";
    case STEP_SETUID:
        return "setuid";
    case STEP_CHECK:
        return "check the credentials";
    default:
        return "exec";
    }
}

/* In the child: report the failed step and exit. Async-signal-safe. */
static void
child_fail(int err_fd, int step)
{
    int msg[2] = {step, errno};

    (void)!write(err_fd, msg, sizeof(msg));
    _exit(127);
}

/* Start the shim as the user: fork, then in the child (only async-signal-safe calls) a session,
 * the cancel signals blocked and every other signal at its default, stdio on /dev/null, the
 * go socket on fd 3, then setgroups, setgid, setuid, in that order, each checked, and a check
 * that root cannot be had back; then exec. A failure before exec comes back through a
 * close-on-exec pipe. 0 with *out_pid, or an errno value with why. */
static int
spawn_as_user(const exec_user *u, const char *exe, char *const argv[], int child_fd, pid_t *out_pid,
              char *why, size_t why_len)
{
    sigset_t all, old, blocked;
    int errp[2] = {-1, -1};
    int msg[2] = {0, 0};
    int dev_null, rc = 0, status;
    ssize_t got;
    pid_t pid;

    dev_null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (dev_null < 0) {
        rc = errno;
        (void)snprintf(why, why_len, "open /dev/null failed: %s", strerror(rc));
        return rc;
    }
    if (pipe2(errp, O_CLOEXEC) != 0) {
        rc = errno;
        close(dev_null);
        return rc;
    }
    /* Above fd 3, so that setting up fds 0..3 in the child cannot close them. */
    for (int i = 0; i < 2; i++) {
        int fd = fcntl(errp[i], F_DUPFD_CLOEXEC, SHIM_GO_FD + 1);

        close(errp[i]);
        errp[i] = fd;
    }
    {
        int fd = fcntl(dev_null, F_DUPFD_CLOEXEC, SHIM_GO_FD + 1);

        close(dev_null);
        dev_null = fd;
    }
    if (errp[0] < 0 || errp[1] < 0 || dev_null < 0) {
        rc = EMFILE;
        goto out;
    }
    cancel_sigset(&blocked);
    /* No signal handler of the daemon's may run in the child (on_signal would stop the daemon). */
    sigfillset(&all);
    (void)pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0) {
        struct sigaction dfl;

        if (setsid() < 0)
            child_fail(errp[1], STEP_SETSID);
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; sig++)
            (void)sigaction(sig, &dfl, NULL); /* SIGKILL, SIGSTOP, 32, 33: EINVAL, harmless */
        if (sigprocmask(SIG_SETMASK, &blocked, NULL) != 0)
            child_fail(errp[1], STEP_SIGNALS);
        if (dup2(dev_null, 0) < 0 || dup2(dev_null, 1) < 0 || dup2(dev_null, 2) < 0 ||
            dup2(child_fd, SHIM_GO_FD) < 0)
            child_fail(errp[1], STEP_STDIO);
        if (setgroups((size_t)u->n_groups, u->groups) != 0)
            child_fail(errp[1], STEP_SETGROUPS);
        if (setresgid(u->gid, u->gid, u->gid) != 0)
            child_fail(errp[1], STEP_SETGID);
        if (setresuid(u->uid, u->uid, u->uid) != 0)
            child_fail(errp[1], STEP_SETUID);
        if (getuid() != u->uid || geteuid() != u->uid || getgid() != u->gid ||
            getegid() != u->gid || setuid(0) == 0) {
            errno = EPERM;
            child_fail(errp[1], STEP_CHECK);
        }
        execve(exe, argv, (char *const *)u->env);
        child_fail(errp[1], STEP_EXEC);
    }
    rc = pid < 0 ? errno : 0;
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        goto out;
    close(errp[1]);
    errp[1] = -1;
    do
        got = read(errp[0], msg, sizeof(msg));
    while (got < 0 && errno == EINTR);
    if (got == 0) {
        *out_pid = pid; /* exec'd: the pipe closed on exec */
        goto out;
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    rc = got == (ssize_t)sizeof(msg) && msg[1] != 0 ? msg[1] : EIO;
    (void)snprintf(why, why_len, "start its supervisor as uid %lu: %s failed: %s",
                   (unsigned long)u->uid, step_name(got == (ssize_t)sizeof(msg) ? msg[0] : 0),
                   strerror(rc));
    if (rc == EAGAIN || rc == ENOMEM)
        rc = EIO; /* a refusal of the user's, not a shortage to wait out */
out:
    if (errp[0] >= 0)
        close(errp[0]);
    if (errp[1] >= 0)
        close(errp[1]);
    if (dev_null >= 0)
        close(dev_null);
    return rc;
}

/* The shim of a task of another user: look the user up, give them the job directory, start exe
 * (the binary to run; argv[0] names it). 0 with *out_pid, or an errno value with req->why
 * filled. */
static int
spawn_user_shim(const exec_shim_req *req, const char *exe, char *const argv[], int child_fd,
                pid_t *out_pid)
{
    char scratch[256];
    char *why = req->why != NULL ? req->why : scratch;
    size_t why_len = req->why != NULL ? req->why_len : sizeof(scratch);
    exec_user u;
    int rc = 0;

    if (user_lookup(req->uid, &u, &rc, why, why_len) != 0)
        return rc;
    if (spool_give_job_dir(req->job_dir, u.uid, u.gid) != RX_OK) {
        rc = errno != 0 ? errno : EIO;
        (void)snprintf(why, why_len, "give the job directory '%s' to uid %lu failed: %s",
                       req->job_dir, (unsigned long)u.uid, strerror(rc));
        user_free(&u);
        return rc == EAGAIN || rc == ENOMEM ? EIO : rc;
    }
    rc = spawn_as_user(&u, exe, argv, child_fd, out_pid, why, why_len);
    user_free(&u);
    return rc;
}

rx_err
exec_local_spawn(const exec_shim_req *req, exec_shim *out_shim, int *out_errno)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t blocked, all;
    char idx[32], n_tasks[32], timeout[32], grace[32];
    char *argv[9];
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
    argv[0] = (char *)req->self_exe;
    argv[1] = "--shim";
    argv[2] = (char *)req->job_dir;
    argv[3] = idx;
    argv[4] = n_tasks;
    argv[5] = timeout;
    argv[6] = grace;
    argv[7] = req->has_args ? "1" : "0";
    argv[8] = NULL;
    if (req->why != NULL && req->why_len > 0)
        req->why[0] = '\0';
    if (exec_local_as_user(req->uid)) {
        rc = spawn_user_shim(req, "/proc/self/exe", argv, child_fd, &pid);
        goto out_fds;
    }

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
    /* Through /proc/self/exe, the binary this daemon runs, which stays executable when its file
     * is replaced or removed (a rebuild, an upgrade); argv[0] still names the path. */
    if (rc == 0)
        rc = posix_spawn(&pid, "/proc/self/exe", &fa, &attr, argv, environ);
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

/* kill(-pgid, SIGKILL) with uid's rights only: from a child that has become uid, so that a
 * pid the user wrote into t<i>.pid cannot make root kill someone else's processes. 0 or -1. */
static int
kill_group_as(uid_t uid, pid_t pgid)
{
    sigset_t all, old;
    int status = 0;
    pid_t pid;

    if (!exec_local_as_user(uid))
        return kill(-pgid, SIGKILL);
    sigfillset(&all);
    (void)pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setresuid(uid, uid, uid) != 0)
            _exit(2);
        _exit(kill(-pgid, SIGKILL) == 0 ? 0 : 1);
    }
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        return -1;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

void
exec_local_kill_orphan(const char *job_dir, uint64_t idx, uid_t uid)
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
    if (kill_group_as(uid, (pid_t)pid) == 0)
        rx__log(RX_LOG_INFO, "exec: killed the orphaned process group %lld of task %" PRIu64, pid,
                idx);
    (void)unlink(path);
}

/* ---------------------------------------------------------------------------------------------
 * The shim
 * ------------------------------------------------------------------------------------------- */

enum stop_reason { STOP_NONE = 0, STOP_TIMEOUT, STOP_CANCEL };

typedef struct shim {
    const char *job_dir;
    uint64_t idx;
    uint64_t n_tasks;
    int64_t timeout_ms;
    int64_t grace_ms;
    int has_args;
    int under_slurm; /* run by Slurm (exec_slurm.c): its pids mean nothing to the daemon's host */
    int sfd;
    store_work work;
    void *arg;
    size_t arg_len;
    spool_exit rec;
    char out_path[PATH_MAX];
    char result_path[PATH_MAX];
    char error_path[PATH_MAX];
    char arg_path[PATH_MAX];
    char pid_path[PATH_MAX];
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

/* Wait for "go" on fd 3: 1 for go, 0 for end-of-file (or a cancel) before it. */
static int
wait_go(const shim *sh)
{
    struct pollfd pfd[2] = {{.fd = SHIM_GO_FD, .events = POLLIN},
                            {.fd = sh->sfd, .events = POLLIN}};

    for (;;) {
        char c;
        ssize_t n;
        int rc = poll(pfd, 2, -1);

        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return 0;
        /* "go" first: a cancel that came with it is seen right after, as a task stopped before
         * it started, rather than as one never allowed to start. */
        if (pfd[0].revents != 0) {
            n = read(SHIM_GO_FD, &c, 1);
            if (n < 0 && errno == EINTR)
                continue;
            return n == 1 && c == 'g';
        }
        if (pfd[1].revents != 0 && cancel_pending(sh))
            return 0;
    }
}

/* Create path afresh: whatever the task left there (a FIFO would block open(2)) is removed
 * first, and O_EXCL refuses anything that appears meanwhile. fd, or -1. */
static int
create_fresh(const char *path)
{
    (void)unlink(path);
    return open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
}

static int
write_file(const char *path, const void *data, size_t len)
{
    const char *p = data;
    int fd = create_fresh(path);

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
    err = spool_read_file(path, WORK_MAX_BYTES, &blob, &len);
    if (err == RX_OK) {
        err = store_work_decode(blob, len, &sh->work);
        rx__free(blob);
    }
    if (err != RX_OK)
        return set_error(sh, "supervisor: read '%s' failed: %s", path, rx_strerror(err));
    if (sh->has_args) {
        int fd;

        (void)snprintf(path, sizeof(path), "%s/args", sh->job_dir);
        fd = spool_open_read(path, NULL);
        if (fd < 0)
            return set_error(sh, "supervisor: open '%s' failed: %s", path, strerror(errno));
        err = store_args_read(fd, (size_t)sh->idx, &sh->arg, &sh->arg_len);
        close(fd);
        if (err != RX_OK)
            return set_error(sh, "supervisor: read argument %" PRIu64 " from '%s' failed: %s",
                             sh->idx, path, rx_strerror(err));
    }
    return 0;
}

static int
task_paths(shim *sh)
{
    if (spool_task_path(sh->job_dir, sh->idx, ".out", sh->out_path, PATH_MAX) != 0 ||
        spool_task_path(sh->job_dir, sh->idx, ".result", sh->result_path, PATH_MAX) != 0 ||
        spool_task_path(sh->job_dir, sh->idx, ".error", sh->error_path, PATH_MAX) != 0 ||
        spool_task_path(sh->job_dir, sh->idx, ".arg", sh->arg_path, PATH_MAX) != 0 ||
        spool_task_path(sh->job_dir, sh->idx, ".pid", sh->pid_path, PATH_MAX) != 0)
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
    } else if ((uint64_t)st.st_size > RX_RESULT_MAX_BYTES) {
        (void)unlink(sh->result_path);
        sh->rec.state = RX_TASK_ERROR;
        (void)set_error(sh, "result of %lld bytes is over the limit of %zu bytes",
                        (long long)st.st_size, RX_RESULT_MAX_BYTES);
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

/* Wait for the task, enforcing the time limit and stopping it on a cancel signal. */
static enum stop_reason
watch_task(shim *sh, rx__proc *proc)
{
    enum stop_reason stop = STOP_NONE;
    int64_t start_ms = rx__now_ms();
    int64_t deadline = sh->timeout_ms > 0 ? start_ms + sh->timeout_ms : 0;
    int64_t sigkill_at = 0;

    for (;;) {
        struct pollfd pfd[2];
        int64_t now = rx__now_ms(), next = 0;
        nfds_t n = 0;
        int timeout, rc;

        if (stop == STOP_NONE && deadline > 0 && now >= deadline) {
            stop = STOP_TIMEOUT;
            (void)rx__proc_signal_group(proc, SIGTERM);
            sigkill_at = now + sh->grace_ms;
        }
        if (sigkill_at > 0 && now >= sigkill_at) {
            (void)rx__proc_signal_group(proc, SIGKILL);
            sigkill_at = 0;
        }
        if (stop == STOP_NONE && deadline > 0)
            next = deadline;
        if (sigkill_at > 0 && (next == 0 || sigkill_at < next))
            next = sigkill_at;
        if (proc->pidfd < 0 && (next == 0 || next > now + POLL_NO_PIDFD_MS))
            next = now + POLL_NO_PIDFD_MS;
        timeout = next == 0 ? -1 : next > now ? (int)(next - now) : 0;

        pfd[n].fd = sh->sfd;
        pfd[n++].events = POLLIN;
        if (proc->pidfd >= 0) {
            pfd[n].fd = proc->pidfd;
            pfd[n++].events = POLLIN;
        }
        rc = poll(pfd, n, timeout);
        if (rc < 0 && errno != EINTR)
            break; /* cannot wait: reap (which kills the group) rather than spin */
        if (rc > 0 && pfd[0].revents != 0 && cancel_pending(sh) && stop == STOP_NONE) {
            stop = STOP_CANCEL;
            (void)rx__proc_signal_group(proc, SIGTERM);
            sigkill_at = rx__now_ms() + sh->grace_ms;
        }
        if (proc->pidfd >= 0 ? (rc > 0 && n > 1 && pfd[1].revents != 0) : rx__proc_exited(proc))
            break;
    }
    return stop;
}

/* Start and watch the task; fills sh->rec. */
static void
run_task(shim *sh)
{
    char *extra[8] = {NULL};
    size_t n_extra = 0;
    char **argv = NULL, **envp = NULL;
    size_t argc = 0;
    char stdin_path[PATH_MAX], text[160], pidline[64];
    rx__spawn_req req;
    rx__proc proc = {0, -1};
    enum stop_reason stop;
    uint64_t task_start = 0;
    int out_fd = -1, spawn_errno = 0, wstatus = 0;

    sh->rec.state = RX_TASK_START_FAILED;
    sh->rec.exit_status = -1;
    if (task_paths(sh) != 0 || load_inputs(sh) != 0)
        return;
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
    out_fd = create_fresh(sh->out_path);
    if (out_fd < 0) {
        (void)set_error(sh, "supervisor: create '%s' failed: %s", sh->out_path, strerror(errno));
        goto done;
    }
    (void)snprintf(stdin_path, sizeof(stdin_path), "%s/stdin", sh->job_dir);
    req.argv = (const char *const *)argv;
    req.envp = envp;
    req.cwd = sh->work.cwd;
    req.stdin_path = sh->work.stdin_data != NULL ? stdin_path : NULL;
    req.out_fd = out_fd;
    sh->rec.started_s = now_utc_s();
    if (rx__spawn(&req, &proc, &spawn_errno) != RX_OK) {
        sh->rec.ended_s = sh->rec.started_s;
        if (spawn_errno == ENOENT)
            (void)set_error(sh, "command not found: '%s'", argv[0]);
        else
            (void)set_error(sh, "cannot start '%s': %s", argv[0], strerror(spawn_errno));
        goto done;
    }
    close(out_fd);
    out_fd = -1;
    sh->rec.task_pid = proc.pid;
    /* Where the task is, for a daemon that finds this shim gone without a record. */
    if (!sh->under_slurm && exec_local_proc_start(proc.pid, &task_start) == 0) {
        int n = snprintf(pidline, sizeof(pidline), "%ld %" PRIu64 "\n", (long)proc.pid, task_start);

        (void)write_file(sh->pid_path, pidline, (size_t)n);
    }

    stop = watch_task(sh, &proc);
    if (rx__proc_reap(&proc, &wstatus) != RX_OK) {
        sh->rec.ended_s = now_utc_s();
        sh->rec.state = RX_TASK_LOST;
        (void)set_error(sh, "supervisor: waitpid failed: %s", strerror(errno));
        goto done;
    }
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
    rx__strv_free(argv, argc);
    rx__free(envp);
    for (size_t i = 0; i < n_extra; i++)
        rx__free(extra[i]);
}

int
engine_shim_main(int argc, char **argv)
{
    shim sh;
    sigset_t set;
    char **a;
    const char *idx_arg;
    int base, under_slurm, rc = 0;

    memset(&sh, 0, sizeof(sh));
    sh.sfd = -1;
    /* Nothing the daemon had open belongs here but fd 3; a stray inherited descriptor (a
     * listening socket, say) would otherwise live as long as the task. */
    (void)close_range(SHIM_GO_FD + 1, ~0U, 0);
    if (argc < 1)
        return SHIM_EXIT_BAD_ARGS;
    /* Both `main(argc, argv)` and `main(argc - 1, argv + 1)` are accepted: argv[0] or argv[1]
     * is "--shim", the supervisor's six arguments follow it. */
    base = argc >= 1 && strcmp(argv[0], "--shim") == 0 ? 0 : 1;
    a = argv + base + 1;
    /* Under Slurm (exec_slurm.c) INDEX is "-": the array task's SLURM_ARRAY_TASK_ID, and no
     * "go" comes (the array is released only once its submission is durable). */
    under_slurm = argc == base + 7 && strcmp(a[1], "-") == 0;
    idx_arg = under_slurm ? getenv("SLURM_ARRAY_TASK_ID") : argc == base + 7 ? a[1] : NULL;
    if (argc != base + 7 || strcmp(argv[base], "--shim") != 0 || a[0][0] != '/' ||
        idx_arg == NULL || parse_u64_arg(idx_arg, INT64_MAX, &sh.idx) != 0 ||
        parse_u64_arg(a[2], INT64_MAX, &sh.n_tasks) != 0 ||
        rx__parse_i64(a[3], 0, INT64_MAX / 2, &sh.timeout_ms) != RX_OK ||
        rx__parse_i64(a[4], 0, INT64_MAX / 2, &sh.grace_ms) != RX_OK ||
        (strcmp(a[5], "0") != 0 && strcmp(a[5], "1") != 0)) {
        (void)fprintf(stderr, "usage: rxjobd --shim JOB_DIR INDEX N_TASKS TIMEOUT_MS GRACE_MS "
                              "HAS_ARGS (run by rxjobd, not by hand)\n");
        return SHIM_EXIT_BAD_ARGS;
    }
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

    if (sh.sfd < 0) {
        sh.rec.go = 1;
        sh.rec.state = RX_TASK_START_FAILED;
        sh.rec.exit_status = -1;
        (void)set_error(&sh, "supervisor: signalfd failed: %s", strerror(errno));
    } else if (!under_slurm && !wait_go(&sh)) {
        /* Never told to start: the task did not run, and may be started again. */
        sh.rec.go = 0;
        sh.rec.state = RX_TASK_NOT_RUN;
        sh.rec.exit_status = -1;
    } else if (cancel_pending(&sh)) {
        sh.rec.go = 1;
        sh.rec.state = RX_TASK_NOT_RUN;
        sh.rec.exit_status = -1;
        (void)set_error(&sh, "not run: the job stopped before the task started");
    } else {
        sh.rec.go = 1;
        run_task(&sh);
    }
    close(SHIM_GO_FD);
    if (spool_exit_write(sh.job_dir, sh.idx, &sh.rec) != RX_OK)
        rc = 1; /* no record: the daemon reports the task as lost */
    if (sh.pid_path[0] != '\0') {
        (void)unlink(sh.pid_path);
        (void)unlink(sh.arg_path);
        (void)unlink(sh.error_path);
    }
    if (sh.sfd >= 0)
        close(sh.sfd);
    store_work_free(&sh.work);
    rx__free(sh.arg);
    spool_exit_free(&sh.rec);
    return rc;
}
