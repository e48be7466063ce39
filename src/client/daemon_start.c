/*
 * daemon_start.c - the embedded default (DESIGN.md section 4): find the per-user rxjobd's socket
 * and state directory, and start rxjobd when nothing answers there, as task-spooler starts its
 * server on first use.
 *
 * The daemon is found as $RXJOB_DAEMON, else `rxjobd` beside the running program, else the build
 * tree's (RX_BUILD_DAEMON_PATH, which CMake gives the library), else in PATH. It is run with
 * --socket and --state-dir; it daemonizes itself, and the process we start returns once the
 * socket answers (or once it has failed). We reap that process and then probe the socket for up
 * to RX__DAEMON_START_WAIT_MS. Two callers racing both start one: the daemon's lock refuses the
 * second, whose caller then finds the first answering. Nothing here prints: the daemon's own
 * complaint (its first line on stderr) ends up in the context's error message.
 */
#define _GNU_SOURCE /* posix_spawn_file_actions_addopen's flags, pipe2 */
#include "client/daemon_start.h"

#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Pause between probes of the socket, in milliseconds. */
#define PROBE_INTERVAL_MS 10

/* How long the socket is still probed once the started process failed, in milliseconds. */
#define DAEMON_FAILED_WAIT_MS 1000

/* Bytes of the daemon's stderr kept for the error message. */
#define DAEMON_ERR_MAX 400

static int
fits_socket(const char *path)
{
    return strlen(path) < sizeof(((struct sockaddr_un *)0)->sun_path);
}

static rx_err
join_path(char *buf, size_t len, const char *a, const char *b)
{
    int n = snprintf(buf, len, "%s%s", a, b);

    return n < 0 || (size_t)n >= len ? RX_ETOOBIG : RX_OK;
}

rx_err
rx__daemon_socket_path(char *buf, size_t len)
{
    const char *env = getenv("RXJOB_SOCKET");
    char tmp[PATH_MAX];
    rx_err err;

    if (env != NULL && env[0] != '\0')
        err = join_path(tmp, sizeof(tmp), env, "");
    else if ((env = getenv("XDG_RUNTIME_DIR")) != NULL && env[0] != '\0')
        err = join_path(tmp, sizeof(tmp), env, "/rxjob/rxjobd.sock");
    else {
        int n = snprintf(tmp, sizeof(tmp), "/tmp/rxjob-%lu/rxjobd.sock", (unsigned long)getuid());

        err = n < 0 || (size_t)n >= sizeof(tmp) ? RX_ETOOBIG : RX_OK;
    }
    if (err != RX_OK || !fits_socket(tmp))
        return RX_ETOOBIG;
    return join_path(buf, len, tmp, "");
}

rx_err
rx__daemon_state_dir(char *buf, size_t len)
{
    const char *env = getenv("RXJOB_STATE_DIR");
    const char *home;
    struct passwd pw, *found = NULL;
    char pwbuf[4096];

    if (env != NULL && env[0] != '\0')
        return join_path(buf, len, env, "");
    env = getenv("XDG_STATE_HOME");
    if (env != NULL && env[0] == '/')
        return join_path(buf, len, env, "/rxjob");
    home = getenv("HOME");
    if (home == NULL || home[0] == '\0') {
        if (getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &found) != 0 || found == NULL ||
            found->pw_dir == NULL || found->pw_dir[0] == '\0')
            return RX_ENOENT;
        home = found->pw_dir;
    }
    return join_path(buf, len, home, "/.local/state/rxjob");
}

int
rx__daemon_answers(const char *socket_path, int *out_errno)
{
    struct sockaddr_un addr;
    int fd, rc, saved;

    if (!fits_socket(socket_path)) {
        if (out_errno != NULL)
            *out_errno = ENAMETOOLONG;
        return 0;
    }
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, socket_path, strlen(socket_path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (out_errno != NULL)
            *out_errno = errno;
        return 0;
    }
    do {
        rc = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
    } while (rc != 0 && errno == EINTR);
    saved = errno;
    close(fd);
    if (rc == 0)
        return 1;
    if (out_errno != NULL)
        *out_errno = saved;
    return 0;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int
is_executable_file(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* The rxjobd to run: a path (has '/') or the bare name for a PATH search. */
static rx_err
find_daemon(char *buf, size_t len)
{
    const char *env = getenv("RXJOB_DAEMON");
    char self[PATH_MAX];
    char *slash;

    if (env != NULL && env[0] != '\0')
        return join_path(buf, len, env, "");
    if (realpath("/proc/self/exe", self) != NULL) {
        slash = strrchr(self, '/');
        if (slash != NULL) {
            slash[1] = '\0';
            if (join_path(buf, len, self, "rxjobd") == RX_OK && is_executable_file(buf))
                return RX_OK;
        }
    }
#ifdef RX_BUILD_DAEMON_PATH
    if (is_executable_file(RX_BUILD_DAEMON_PATH))
        return join_path(buf, len, RX_BUILD_DAEMON_PATH, "");
#endif
    return join_path(buf, len, "rxjobd", "");
}

/* mkdir -p of the directory that will hold path's last component, mode 0700. Best effort: the
 * daemon reports what it cannot create. */
static void
make_parent_dirs(const char *path)
{
    char dir[PATH_MAX];
    char *slash;

    if (join_path(dir, sizeof(dir), path, "") != RX_OK)
        return;
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return;
    *slash = '\0';
    for (char *p = dir + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            (void)mkdir(dir, 0700);
            *p = '/';
        }
    }
    (void)mkdir(dir, 0700);
}

/* Whatever the daemon has written to its stderr pipe so far, as one line (never blocks: the
 * daemon keeps its end open while it runs only if it failed to detach it). */
static void
read_daemon_stderr(int fd, char *buf, size_t len)
{
    size_t used;
    long got;

    buf[0] = '\0';
    if (fd < 0 || len == 0)
        return;
    got = rx__read_full(fd, buf, len - 1); /* fd is non-blocking: never waits */
    used = got > 0 ? (size_t)got : 0;
    buf[used] = '\0';
    for (size_t i = 0; i < used; i++) {
        if (buf[i] == '\n' || buf[i] == '\r') {
            buf[i] = buf[i + 1] != '\0' ? ' ' : '\0';
        }
    }
    while (used > 0 && (buf[used - 1] == ' ' || buf[used - 1] == '\0'))
        buf[--used] = '\0';
}

rx_err
rx__daemon_start(const char *socket_path, const char *state_dir, char *errbuf, size_t errlen)
{
    char daemon[PATH_MAX];
    char daemon_err[DAEMON_ERR_MAX];
    char *argv[6];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, deflt;
    int fa_ok = 0, attr_ok = 0;
    int pipefd[2] = {-1, -1};
    pid_t pid = -1;
    int reaped = 0, failed = 0, child_status = 0;
    int64_t deadline;
    int rc, conn_errno = 0;
    rx_err err = RX_ECONTEXT;

    daemon_err[0] = '\0';
    if (find_daemon(daemon, sizeof(daemon)) != RX_OK) {
        (void)snprintf(errbuf, errlen, "start rxjobd: its path is too long");
        return RX_ECONTEXT;
    }
    make_parent_dirs(socket_path);

    argv[0] = daemon;
    argv[1] = "--socket";
    argv[2] = (char *)socket_path;
    argv[3] = "--state-dir";
    argv[4] = (char *)state_dir;
    argv[5] = NULL;

    /* stdin and stdout from /dev/null; stderr to a pipe we read (never wait on) for a reason. */
    if (pipe2(pipefd, O_CLOEXEC) != 0 || fcntl(pipefd[0], F_SETFL, O_NONBLOCK) != 0) {
        (void)snprintf(errbuf, errlen, "start rxjobd: pipe failed: %s", strerror(errno));
        goto done;
    }
    if (posix_spawn_file_actions_init(&fa) != 0)
        goto spawn_failed;
    fa_ok = 1;
    if (posix_spawnattr_init(&attr) != 0)
        goto spawn_failed;
    attr_ok = 1;
    sigemptyset(&none);
    sigemptyset(&deflt);
    sigaddset(&deflt, SIGPIPE);
    sigaddset(&deflt, SIGCHLD);
    sigaddset(&deflt, SIGINT);
    sigaddset(&deflt, SIGTERM);
    sigaddset(&deflt, SIGHUP);
    if (posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) != 0 ||
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2) != 0 ||
        posix_spawnattr_setsigmask(&attr, &none) != 0 ||
        posix_spawnattr_setsigdefault(&attr, &deflt) != 0 ||
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) != 0)
        goto spawn_failed;
    rc = strchr(daemon, '/') != NULL ? posix_spawn(&pid, daemon, &fa, &attr, argv, environ)
                                     : posix_spawnp(&pid, daemon, &fa, &attr, argv, environ);
    if (rc != 0) {
        (void)snprintf(errbuf, errlen, "start rxjobd: run '%s' failed: %s", daemon, strerror(rc));
        pid = -1;
        goto done;
    }
    close(pipefd[1]);
    pipefd[1] = -1;

    /* The process we started returns once the daemon answers (or has failed); the daemon itself
     * goes on detached. Reap it, and probe the socket meanwhile and afterwards. */
    deadline = rx__now_ms() + RX__DAEMON_START_WAIT_MS;
    for (;;) {
        if (!reaped) {
            pid_t got = waitpid(pid, &child_status, WNOHANG);

            if (got == pid || (got < 0 && errno == ECHILD)) /* ECHILD: SIGCHLD is ignored */
                reaped = 1;
            /* It failed (a bad supervisor, a store it cannot open, or another caller's daemon
             * won the race for the lock): that one, if any, answers within a moment; no need to
             * wait out the rest. */
            if (got == pid && !(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 0)) {
                failed = 1;
                if (deadline > rx__now_ms() + DAEMON_FAILED_WAIT_MS)
                    deadline = rx__now_ms() + DAEMON_FAILED_WAIT_MS;
            }
        }
        if (rx__daemon_answers(socket_path, &conn_errno)) {
            err = RX_OK;
            break;
        }
        if (rx__now_ms() >= deadline)
            break;
        sleep_ms(PROBE_INTERVAL_MS);
    }
    if (!reaped) {
        /* It should return as soon as the daemon answers; give it a moment, then stop waiting
         * for it (the daemon is detached from it, so ending it hurts nothing). */
        int64_t reap_deadline = rx__now_ms() + 2000;

        for (;;) {
            pid_t got = waitpid(pid, &child_status, WNOHANG);

            if (got == pid || (got < 0 && errno == ECHILD)) {
                reaped = 1;
                break;
            }
            if (rx__now_ms() >= reap_deadline) {
                (void)kill(pid, SIGKILL);
                while (waitpid(pid, &child_status, 0) < 0 && errno == EINTR) {
                }
                reaped = 1;
                break;
            }
            sleep_ms(PROBE_INTERVAL_MS);
        }
    }
    if (err != RX_OK) {
        read_daemon_stderr(pipefd[0], daemon_err, sizeof(daemon_err));
        if (failed && daemon_err[0] != '\0')
            (void)snprintf(errbuf, errlen, "started '%s', which failed: %s", daemon, daemon_err);
        else
            (void)snprintf(errbuf, errlen,
                           "started '%s' but nothing answers on '%s' after %d ms (%s)%s%s", daemon,
                           socket_path, RX__DAEMON_START_WAIT_MS, strerror(conn_errno),
                           daemon_err[0] != '\0' ? ": " : "", daemon_err);
    }
    goto done;

spawn_failed:
    (void)snprintf(errbuf, errlen, "start rxjobd: setting up its process failed");
done:
    if (fa_ok)
        (void)posix_spawn_file_actions_destroy(&fa);
    if (attr_ok)
        (void)posix_spawnattr_destroy(&attr);
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    return err;
}
