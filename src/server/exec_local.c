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
#include "exec/argv.h"
#include "exec/spawn.h"
#include "server/engine.h"
#include "store/spool.h"

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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The longest the daemon waits for a process that runs as a user (system mode), milliseconds:
 * then it kills it. Such a process normally ends in milliseconds; its user could stop it. */
#define EXEC_AS_USER_WAIT_MS 10000

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

/* path starts with the ELF magic; also when it cannot be read (execute-only: the exec will
 * tell). */
static int
is_elf(const char *path)
{
    unsigned char head[4];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    ssize_t n;

    if (fd < 0)
        return 1;
    n = pread(fd, head, sizeof(head), 0);
    close(fd);
    return n == (ssize_t)sizeof(head) && memcmp(head, "\177ELF", 4) == 0;
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
        (!S_ISREG(st.st_mode) && (errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL) != 0)) {
        int saved = errno;

        if (fd >= 0)
            close(fd);
        (void)snprintf(errbuf, errlen, "the task supervisor '%s' is not an executable file: %s",
                       real, strerror(saved));
        return RX_EINVAL;
    }
    /* It runs from the fd (/proc/self/fd/N): a script would start its interpreter with a path
     * that is gone once the exec closed the fd, and every task would be lost without a word. */
    if (!is_elf(real)) {
        close(fd);
        (void)snprintf(errbuf, errlen,
                       "the task supervisor '%s' is not an ELF executable (a script cannot be "
                       "one: it is run from a close-on-exec file descriptor, which an "
                       "interpreter cannot open)",
                       real);
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

/* rx__run_as's part for exec_local_dir_ok_as, as the user: 0 if *arg is a directory, 1 if not. */
static int
dir_ok_fn(void *arg)
{
    struct stat st;

    return stat((const char *)arg, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : 1;
}

int
exec_local_dir_ok_as(uid_t uid, const char *path)
{
    char why[256];
    exec_user u;
    int rc, err = 0;

    if (user_lookup(uid, &u, &err, why, sizeof(why)) != 0)
        return -1;
    rc = rx__run_as(u.uid, u.gid, u.groups, (size_t)u.n_groups, dir_ok_fn, (void *)path,
                    EXEC_AS_USER_WAIT_MS);
    user_free(&u);
    return rc == 0 ? 1 : rc == 1 ? 0 : -1;
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
    /* Bounded: between its setuid and its exec the child is the user's, who could stop it. */
    {
        struct pollfd pfd = {.fd = errp[0], .events = POLLIN, .revents = 0};
        int ready;

        while ((ready = poll(&pfd, 1, (int)EXEC_AS_USER_WAIT_MS)) < 0 && errno == EINTR) {
        }
        if (ready <= 0) {
            (void)rx__wait_child_deadline(pid, 0, &status); /* SIGKILL, reaped */
            (void)snprintf(why, why_len,
                           "start its supervisor as uid %lu: no exec within %d ms (stopped?)",
                           (unsigned long)u->uid, (int)EXEC_AS_USER_WAIT_MS);
            rc = EIO;
            goto out;
        }
    }
    do
        got = read(errp[0], msg, sizeof(msg));
    while (got < 0 && errno == EINTR);
    if (got == 0) {
        *out_pid = pid; /* exec'd: the pipe closed on exec */
        goto out;
    }
    (void)rx__wait_child_deadline(pid, EXEC_AS_USER_WAIT_MS, &status);
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

/* The argument vector of the shim of req: argv[0] its path, then what rxjob-shim parses
 * (src/shim/shim.c main). The strings live in *bufs. */
typedef struct shim_args {
    char idx[32], n_tasks[32], timeout[32], grace[32], output_bytes[32], result_bytes[32];
    char count[32];
    char *argv[13];
} shim_args;

static void
shim_args_fill(const exec_shim_req *req, shim_args *b)
{
    (void)snprintf(b->idx, sizeof(b->idx), "%" PRIu64, req->idx);
    (void)snprintf(b->n_tasks, sizeof(b->n_tasks), "%" PRIu64, req->n_tasks);
    (void)snprintf(b->timeout, sizeof(b->timeout), "%" PRId64, req->timeout_ms);
    (void)snprintf(b->grace, sizeof(b->grace), "%" PRId64, req->grace_ms);
    (void)snprintf(b->output_bytes, sizeof(b->output_bytes), "%" PRIu64, req->output_bytes);
    (void)snprintf(b->result_bytes, sizeof(b->result_bytes), "%" PRIu64, req->result_bytes);
    b->argv[0] = (char *)req->shim_exe;
    b->argv[1] = "--shim";
    b->argv[2] = (char *)req->job_dir;
    b->argv[3] = b->idx;
    b->argv[4] = b->n_tasks;
    b->argv[5] = b->timeout;
    b->argv[6] = b->grace;
    b->argv[7] = req->has_args ? "1" : "0";
    b->argv[8] = b->output_bytes;
    b->argv[9] = b->result_bytes;
    b->argv[10] = NULL;
    if (req->count > 0) { /* a chunk of tasks */
        (void)snprintf(b->count, sizeof(b->count), "%" PRIu64, req->count);
        b->argv[10] = b->count;
        b->argv[11] = req->stop_on_failure ? "1" : "0";
        b->argv[12] = NULL;
    }
}

/* Spawn the shim binary with argv, fd 3 one end of a new socket pair: as req->uid when
 * exec_local_as_user says so (req then also names the job directory to give), else as the
 * daemon. */
static rx_err
spawn_shim(const exec_shim_req *req, char *const argv[], exec_shim *out_shim, int *out_errno)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t blocked, all;
    char exe[64];
    int sv[2] = {-1, -1};
    int child_fd = -1;
    pid_t pid = 0;
    int rc;

    *out_errno = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        *out_errno = errno;
        return RX_ESYSTEM;
    }
    {
        /* Room for exec_local_assign's whole message (it never waits: MSG_DONTWAIT), whatever
         * net.core.wmem_default says (the kernel caps this at wmem_max). */
        int sndbuf = 256 * 1024;

        (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
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
    /* The binary opened at start (exec_local_shim_open), which stays executable when its file
     * is replaced or removed (a rebuild, an upgrade); argv[0] still names the path. */
    (void)snprintf(exe, sizeof(exe), "/proc/self/fd/%d", req->shim_fd);
    if (req->why != NULL && req->why_len > 0)
        req->why[0] = '\0';
    if (exec_local_as_user(req->uid)) {
        rc = spawn_user_shim(req, exe, argv, child_fd, &pid);
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
    out_shim->sid = pid;
    out_shim->go_fd = sv[0];
    out_shim->went = 0;
    out_shim->end_buf = NULL;
    out_shim->end_got = 0;
    out_shim->end_cap = 0;
    out_shim->pidfd = rx__fd_above_stdio(pidfd_open(pid, 0));
    out_shim->start_time = 0;
    /* The shim cannot have exited yet (it waits for its task or for "go"), unless it was killed:
     * then its start time stays 0, which no live process has, and recovery treats it as gone. */
    (void)exec_local_proc_start(pid, &out_shim->start_time);
    return RX_OK;
}

rx_err
exec_local_spawn(const exec_shim_req *req, exec_shim *out_shim, int *out_errno)
{
    /* "--blank", then empty arguments: room the shim writes its task into once it has one, so
     * that ps(1) tells busy supervisors from idle ones (src/shim/shim.c show_task). */
    char *argv[3 + SHIM_TITLE_ROOM];

    argv[0] = (char *)req->shim_exe;
    argv[1] = SHIM_BLANK_ARG;
    for (size_t i = 0; i < SHIM_TITLE_ROOM; i++)
        argv[2 + i] = "";
    argv[2 + SHIM_TITLE_ROOM] = NULL;
    return spawn_shim(req, argv, out_shim, out_errno);
}

rx_err
exec_local_spawn_blank(const char *shim_exe, int shim_fd, exec_shim *out_shim, int *out_errno)
{
    exec_shim_req req;

    memset(&req, 0, sizeof(req));
    req.shim_exe = shim_exe;
    req.shim_fd = shim_fd;
    req.uid = geteuid(); /* never as another user: the job, and so the user, is not known yet */
    return exec_local_spawn(&req, out_shim, out_errno);
}

int
exec_local_assign(exec_shim *sh, const exec_shim_req *req)
{
    char *msg;
    shim_args b;
    size_t len = 0, total;
    ssize_t sent;

    if (sh->go_fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (req->work != NULL && req->work_len > SHIM_WORK_INLINE_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    msg = rx__malloc(5 + SHIM_ASSIGN_MAX + 5 + (req->work != NULL ? req->work_len : 0) + 1);
    if (msg == NULL)
        return -1;
    shim_args_fill(req, &b);
    /* "a", the length, the arguments after argv[0] each with its NUL; "w", the length, the
     * work; "c": one send, so the shim never sees half of it. */
    for (size_t i = 1; b.argv[i] != NULL; i++) {
        size_t k = strlen(b.argv[i]) + 1;

        if (len + k > SHIM_ASSIGN_MAX) {
            rx__free(msg);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(msg + 5 + len, b.argv[i], k);
        len += k;
    }
    msg[0] = 'a';
    rx__le32_put(msg + 1, (uint32_t)len);
    total = 5 + len;
    if (req->work != NULL) {
        msg[total] = 'w';
        rx__le32_put(msg + total + 1, (uint32_t)req->work_len);
        memcpy(msg + total + 5, req->work, req->work_len);
        total += 5 + req->work_len;
    }
    msg[total++] = 'c';
    sent = send(sh->go_fd, msg, total, MSG_NOSIGNAL | MSG_DONTWAIT);
    rx__free(msg);
    if (sent == (ssize_t)total)
        return 0;
    if (sent >= 0)
        errno = EMSGSIZE; /* a part went: the shim would take the rest for something else */
    return -1;
}

/* Close the daemon's end of fd 3, and drop a half-read end message with it. */
static void
go_close(exec_shim *sh)
{
    if (sh->go_fd >= 0)
        close(sh->go_fd);
    sh->go_fd = -1;
    rx__free(sh->end_buf);
    sh->end_buf = NULL;
    sh->end_got = 0;
    sh->end_cap = 0;
}

void
exec_local_go(exec_shim *sh)
{
    if (sh->go_fd < 0)
        return;
    /* MSG_NOSIGNAL: a shim that died must not take the daemon down with SIGPIPE. */
    if (send(sh->go_fd, "g", 1, MSG_NOSIGNAL) == 1) {
        sh->went = 1;
    } else {
        rx__log(RX_LOG_DEBUG, "exec: go to supervisor %ld failed: %s", (long)sh->pid,
                strerror(errno));
        close(sh->go_fd);
        sh->go_fd = -1;
    }
}

int
exec_local_read_end(exec_shim *sh, uint64_t first, uint64_t count, spool_run_exit *out_rec,
                    rx_err *out_err)
{
    for (;;) {
        size_t len = rx__le32_get(sh->end_head + 1), got;
        ssize_t n;

        if (sh->go_fd < 0)
            return -1;
        if (sh->end_got < sizeof(sh->end_head)) {
            n = recv(sh->go_fd, sh->end_head + sh->end_got, sizeof(sh->end_head) - sh->end_got,
                     MSG_DONTWAIT);
        } else {
            got = sh->end_got - sizeof(sh->end_head);
            /* The buffer grows with what arrives (doubling, up to the length said), not to the
             * length a header says: a supervisor that says much and sends little holds little. */
            if (got == sh->end_cap) {
                size_t cap = sh->end_cap * 2 < len ? sh->end_cap * 2 : len;
                char *p = rx__realloc(sh->end_buf, cap + 1);

                if (p == NULL) {
                    go_close(sh);
                    return -1;
                }
                sh->end_buf = p;
                sh->end_cap = cap;
            }
            n = recv(sh->go_fd, sh->end_buf + got, sh->end_cap - got, MSG_DONTWAIT);
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0 || sh->end_head[0] != 'E') {
            /* End-of-file, an error, or not an end message: its pidfd and record file (if
             * any) tell the rest. */
            go_close(sh);
            return -1;
        }
        sh->end_got += (size_t)n;
        if (sh->end_got == sizeof(sh->end_head)) {
            len = rx__le32_get(sh->end_head + 1);
            sh->end_cap = len < 4096 ? len : 4096;
            if (len == 0 || len > spool_run_exit_max(count) ||
                (sh->end_buf = rx__malloc(sh->end_cap + 1)) == NULL) {
                go_close(sh);
                return -1;
            }
        }
        if (sh->end_got > sizeof(sh->end_head) && sh->end_got == sizeof(sh->end_head) + len) {
            sh->end_buf[len] = '\0';
            *out_err = spool_run_exit_parse(sh->end_buf, len, first, count, out_rec);
            rx__free(sh->end_buf);
            sh->end_buf = NULL;
            sh->end_got = 0;
            sh->end_cap = 0;
            return 1;
        }
    }
}

void
exec_local_ack(exec_shim *sh)
{
    if (sh->go_fd < 0)
        return;
    (void)send(sh->go_fd, "k", 1, MSG_NOSIGNAL);
    go_close(sh);
}

void
exec_local_discard(exec_shim *sh)
{
    exec_local_abandon(sh);
    if (sh->pidfd >= 0)
        (void)pidfd_send_signal(sh->pidfd, SIGKILL, NULL, 0);
    else if (sh->pid > 0)
        (void)kill(sh->pid, SIGKILL); /* our child, not yet reaped: the pid is still its */
    exec_local_wait_abandoned(sh);
}

void
exec_local_abandon(exec_shim *sh)
{
    go_close(sh);
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
    int status;

    /* Bounded: in system mode the shim is the user's, who could stop it. An adopted shim is no
     * child of ours (ECHILD at once): init or a subreaper reaps it. */
    if (sh->pid > 0)
        (void)rx__wait_child_deadline(sh->pid, EXEC_AS_USER_WAIT_MS, &status);
    if (sh->pidfd >= 0)
        close(sh->pidfd);
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
    out_shim->sid = pid;
    out_shim->pidfd = fd;
    out_shim->start_time = start_time;
    out_shim->go_fd = -1;
    out_shim->went = 0; /* unknown: the daemon that started it may have died before "go" */
    return 1;
}

void
exec_local_kill_orphan(const exec_shim *shim, uint64_t idx, uid_t uid)
{
    uint64_t now_start;
    char now_state = 0;
    int killed;

    if (shim == NULL || shim->sid <= 1 || shim->start_time == 0)
        return;
    /* The supervisor itself still there: nothing is orphaned. Another process with its pid: the
     * pid was free to reuse, so no process of its session was left (a session id stays taken
     * while any process has it): nothing to kill either. The supervisor dead but not reaped yet
     * (a zombie: an adopted one is reaped by init or a subreaper, when it gets to it, or never)
     * holds its pid and its session id: its orphans are looked for as if it were gone. */
    if (rx__proc_stat(shim->sid, &now_state, NULL, &now_start) == 0 &&
        !(now_start == shim->start_time && (now_state == 'Z' || now_state == 'X')))
        return;
    /* In this thread, never through a helper running as the user (who could stop it and hold
     * the scheduler): in system mode only what the job's user could signal. */
    killed =
        rx__kill_session(shim->sid, shim->start_time, exec_local_as_user(uid) ? uid : (uid_t)-1);
    if (killed > 0)
        rx__log(RX_LOG_INFO,
                "exec: killed %d orphaned process%s of task %" PRIu64
                " (session %ld of its vanished supervisor)",
                killed, killed == 1 ? "" : "es", idx, (long)shim->sid);
}
