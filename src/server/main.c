/*
 * main.c - rxjobd, the rxjob daemon: options, paths, the one-daemon rules, daemonizing, signals.
 *
 * One daemon per socket and one per state directory. The socket rule is checked by asking: a
 * daemon that accepts a connection on the socket is serving it (its pid comes from SO_PEERCRED),
 * and a socket file nobody accepts on is stale and removed. The state directory rule is a lock:
 * flock on STATE_DIR/rxjobd.lock, which holds the pid, taken for the daemon's whole life (the
 * kernel drops it when the process dies, so a crash leaves nothing to clean).
 *
 * Daemonizing is the classic double fork with setsid, but the first process does not return
 * until the daemon is serving: the daemon writes "ok" (or its error message) into a pipe once
 * its socket listens, so whoever started rxjobd (the library's auto-start, a script) can use the
 * socket as soon as rxjobd exits, and a daemon that could not start says why on the terminal.
 *
 * Signals: SIGTERM and SIGINT write a byte into a self-pipe that the main thread waits on; POST
 * /v1/daemon/stop writes the same byte. Then the daemon stops accepting, removes its socket,
 * lets the requests in progress end, closes the engine (running tasks go on under their
 * supervisors, adopted at the next start) and exits 0.
 *
 * Over the network (--listen HOST:PORT): a TCP listener beside the socket, same routes, where
 * each request names its user with a bearer token of the --tokens file. Its rules are checked
 * before anything starts, and break them and rxjobd refuses to start (exit 2): any TCP listener
 * needs tokens (anyone on the host can connect to a loopback port, and TCP has no SO_PEERCRED);
 * an address other than loopback also needs TLS (--tls-cert, --tls-key), so tokens never cross a
 * network in clear. Plain HTTP on loopback is allowed for a TLS-terminating proxy on the host.
 *
 * System mode (--system, root only): one daemon for every user of the host, on
 * /run/rxjob/rxjobd.sock (0666, in a 0755 directory) with its state in /var/lib/rxjob; each job
 * is its submitter's (SO_PEERCRED) and each task runs as that user (exec_local.c). The state
 * directory and its spool/ are 0711 then: a task's supervisor, running as the user, must reach
 * its job's directory (spool/ID, the user's own) but can list nothing. Under systemd the socket
 * may come ready-made (socket activation: LISTEN_PID and LISTEN_FDS, fd 3, as sd_listen_fds(3)
 * reads them; no libsystemd needed).
 *
 * `rxjobd --shim ...` is not a daemon at all: it executes the task supervisor, rxjob-shim next to
 * rxjobd (or $RXJOBD_SHIM), with the same arguments. The engine runs rxjob-shim itself; the
 * alias serves Slurm batch scripts written by an older rxjobd, which named rxjobd.
 */
#define _GNU_SOURCE /* pipe2, getopt_long */

#include "core/internal.h"
#include "server/engine.h"
#include "server/exec_local.h"
#include "server/http.h"
#include "server/limits.h"
#include "server/tcp.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAIN_MAX_SLOTS        4096                     /* --slots at most (RX_MAX_WORKERS) */
#define MAIN_MAX_GRACE_MS     3600000                  /* --grace-ms at most: one hour */
#define MAIN_DEFAULT_GRACE_MS 1000                     /* --grace-ms default */
#define MAIN_ERR_LEN          1024                     /* one error line, bytes */
#define MAIN_PATH_LEN         PATH_MAX                 /* a path we build, bytes */
#define MAIN_MAX_POLL_MS      600000                   /* --slurm-poll-ms at most: ten minutes */
#define SYSTEM_SOCKET         "/run/rxjob/rxjobd.sock" /* --system's default socket */
#define SYSTEM_STATE_DIR      "/var/lib/rxjob"         /* --system's default state directory */
#define LISTEN_FDS_START      3 /* the first fd systemd passes (sd_listen_fds(3)) */

typedef struct main_opts {
    char *socket_path;
    char *state_dir;
    unsigned slots;
    int hold;
    int64_t grace_ms;
    int foreground;
    const char *executor; /* "local" or "slurm" */
    int64_t poll_ms;      /* --slurm-poll-ms; 0 = the executor's default */
    struct main_tcp {
        const char *listen;   /* --listen HOST:PORT, or NULL: the Unix socket only */
        const char *tls_cert; /* --tls-cert FILE (PEM) */
        const char *tls_key;  /* --tls-key FILE (PEM) */
        const char *tokens;   /* --tokens FILE */
    } tcp;
    int system;       /* --system: serve every user, run each task as its submitter */
    rx_limits limits; /* --limit NAME=VALUE (limits.h) */
} main_opts;

/* The TCP listener, prepared before daemonizing (files are read while relative paths still
 * mean what they meant on the command line), listening after. */
typedef struct main_tcp_setup {
    int enabled;
    tcp_addr addr;
    char *cert_pem; /* NULL: plain HTTP (loopback only) */
    char *key_pem;
    auth_tokens *tokens; /* handed to http_start */
    char url[TCP_URL_LEN];
} main_tcp_setup;

/* The write end of the daemonizing pipe, while the daemon is starting; -1 otherwise. */
static int ready_fd = -1;

/* The self-pipe that stops the daemon: written by signal handlers and /v1/daemon/stop. */
static int stop_pipe[2] = {-1, -1};

/* The most detailed level the log sink prints: info, or debug with --verbose. */
static rx_log_level log_max_level = RX_LOG_INFO;

/* The library's and the engine's messages (rx__log), as "rxjobd: LEVEL: message" lines on
 * stderr, which is STATE_DIR/rxjobd.log once daemonized. One write per line. */
static void
log_sink(rx_log_level level, const char *msg, void *user)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    char line[MAIN_ERR_LEN + 32];
    int len;

    (void)user;
    if (level > log_max_level)
        return;
    len = snprintf(line, sizeof(line), "rxjobd: %s: %s\n",
                   (unsigned)level < RX__ARRAY_LEN(names) ? names[level] : "log", msg);
    if (len < 0)
        return;
    if ((size_t)len >= sizeof(line)) {
        len = (int)sizeof(line) - 1;
        line[len - 1] = '\n';
    }
    (void)!write(STDERR_FILENO, line, (size_t)len);
}

static void log_vline(const char *fmt, va_list ap) RX_PRINTF(1, 0);

/* One log line on stderr: "rxjobd: " then the message, as "component: what: why". */
static void
log_vline(const char *fmt, va_list ap)
{
    char line[MAIN_ERR_LEN];

    if (vsnprintf(line, sizeof(line), fmt, ap) < 0)
        line[0] = '\0';
    (void)fprintf(stderr, "rxjobd: %s\n", line);
    (void)fflush(stderr);
}

static void log_line(const char *fmt, ...) RX_PRINTF(1, 2);

static void
log_line(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vline(fmt, ap);
    va_end(ap);
}

static void die(const char *fmt, ...) RX_PRINTF(1, 2);

/* Say why the daemon cannot start, on stderr and to the waiting first process, and exit 1. */
static void
die(const char *fmt, ...)
{
    char line[MAIN_ERR_LEN];
    char msg[MAIN_ERR_LEN + 16];
    va_list ap;
    int len;

    va_start(ap, fmt);
    if (vsnprintf(line, sizeof(line), fmt, ap) < 0)
        line[0] = '\0';
    va_end(ap);
    len = snprintf(msg, sizeof(msg), "rxjobd: %s\n", line);
    (void)fputs(msg, stderr);
    (void)fflush(stderr);
    if (ready_fd >= 0 && len > 0)
        (void)!write(ready_fd, msg, strlen(msg));
    exit(1);
}

static void path_printf(char *buf, size_t size, const char *fmt, ...) RX_PRINTF(3, 4);

/* Build a path into buf, or exit when it does not fit: a cut path would name another file. */
static void
path_printf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        die("paths: a path is longer than %zu bytes", size - 1);
}

static void
usage(FILE *out)
{
    (void)fputs(
        "usage: rxjobd [--socket PATH] [--state-dir DIR] [--slots N] [--hold] [--grace-ms MS]\n"
        "              [--foreground] [--executor local|slurm] [--slurm-poll-ms MS] [--system]\n"
        "              [--listen HOST:PORT --tokens FILE [--tls-cert FILE --tls-key FILE]]\n"
        "              [--limit NAME=VALUE]... [--verbose]\n"
        "       rxjobd --help | --version\n"
        "\n"
        "The rxjob daemon: runs jobs submitted over HTTP on a Unix socket (docs/protocol.md).\n"
        "\n"
        "  --socket PATH    socket to serve (default $RXJOB_SOCKET, else\n"
        "                   $XDG_RUNTIME_DIR/rxjob/rxjobd.sock, else /tmp/rxjob-$UID/rxjobd.sock)\n"
        "  --state-dir DIR  job store and spool (default $RXJOB_STATE_DIR, else\n"
        "                   $XDG_STATE_HOME/rxjob, else ~/.local/state/rxjob)\n"
        "  --slots N        most task processes at once (default: online CPUs)\n"
        "  --hold           accept and store jobs, start no task (benchmarks)\n"
        "  --grace-ms MS    SIGTERM to SIGKILL delay on cancel and time limits (default 1000)\n"
        "  --foreground     do not daemonize; log to stderr\n"
        "  --verbose        log debug messages too\n"
        "  --executor E     where tasks run: local (this host, default) or slurm (one Slurm job\n"
        "                   array per job; the spool must be shared with the nodes: "
        "docs/slurm.md)\n"
        "  --slurm-poll-ms MS  how often squeue is asked (default 1000)\n"
        "  --system         serve every user of this host (root only): socket\n"
        "                   " SYSTEM_SOCKET " (0666), state dir " SYSTEM_STATE_DIR ";\n"
        "                   each job is its submitter's, each task runs as that user\n"
        "  --listen HOST:PORT  also serve over TCP (IPv4, or [IPv6]; numeric); every request\n"
        "                   needs a token of --tokens; an address other than loopback also\n"
        "                   needs --tls-cert and --tls-key (see rxjobd(8))\n"
        "  --tokens FILE    lines \"TOKEN USER\"; owned by this user, mode 0600\n"
        "  --tls-cert FILE  PEM certificate (chain) for TCP\n"
        "  --tls-key FILE   PEM private key for TCP, unencrypted\n"
        "  --limit NAME=VALUE  set a limit (repeatable): body_bytes, argv_count, argv_bytes,\n"
        "                   env_count, env_bytes, stdin_bytes, tasks_per_job,\n"
        "                   queued_jobs_per_user, output_bytes, result_bytes; *_bytes take\n"
        "                   K, M, G (KiB, MiB, GiB). Defaults: docs/protocol.md \"Limits\"\n"
        "  --help           show this help\n"
        "  --version        show the version\n",
        out);
}

/* ------------------------------------------------------------------------------------------ */
/* Paths                                                                                       */
/* ------------------------------------------------------------------------------------------ */

static const char *
env_nonempty(const char *name)
{
    const char *v = getenv(name);

    return (v != NULL && v[0] != '\0') ? v : NULL;
}

static char *
default_socket_path(void)
{
    char buf[MAIN_PATH_LEN];
    const char *v;

    v = env_nonempty("RXJOB_SOCKET");
    if (v != NULL)
        return rx__strdup(v);
    v = env_nonempty("XDG_RUNTIME_DIR");
    if (v != NULL)
        path_printf(buf, sizeof(buf), "%s/rxjob/rxjobd.sock", v);
    else
        path_printf(buf, sizeof(buf), "/tmp/rxjob-%lu/rxjobd.sock", (unsigned long)getuid());
    return rx__strdup(buf);
}

static char *
default_state_dir(void)
{
    char buf[MAIN_PATH_LEN];
    const char *v;

    v = env_nonempty("RXJOB_STATE_DIR");
    if (v != NULL)
        return rx__strdup(v);
    v = env_nonempty("XDG_STATE_HOME");
    if (v != NULL) {
        path_printf(buf, sizeof(buf), "%s/rxjob", v);
        return rx__strdup(buf);
    }
    v = env_nonempty("HOME");
    if (v == NULL) {
        struct passwd *pw = getpwuid(getuid());

        v = pw != NULL ? pw->pw_dir : NULL;
    }
    if (v == NULL)
        return NULL;
    path_printf(buf, sizeof(buf), "%s/.local/state/rxjob", v);
    return rx__strdup(buf);
}

/* mkdir -p with mode for what it creates; the last component must end up a directory. */
static int
mkdir_p(const char *path, mode_t mode)
{
    char buf[MAIN_PATH_LEN];
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        /* A directory made here gets exactly mode: the daemon's umask (077 once running)
         * must not take the search bit a system-mode socket directory needs from others. */
        if (mkdir(buf, mode) == 0) {
            if (chmod(buf, mode) != 0)
                return -1;
        } else if (errno != EEXIST) {
            return -1;
        }
        buf[i] = i < len ? '/' : '\0';
    }
    {
        struct stat st;

        if (stat(path, &st) != 0)
            return -1;
        if (!S_ISDIR(st.st_mode)) {
            errno = ENOTDIR;
            return -1;
        }
    }
    return 0;
}

/* The socket's directory, created 0700 if missing; it must be ours and closed to others, since
 * whoever may write there could put their own socket in our place. Returns the absolute socket
 * path (rx__malloc'd), or exits. */
static char *
prepare_socket_path(const char *path, mode_t dir_mode)
{
    char dir[MAIN_PATH_LEN];
    char real[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *base = slash != NULL ? slash + 1 : path;
    struct stat st;
    char *abs;
    size_t len;

    if (base[0] == '\0')
        die("socket: '%s' names a directory, not a socket", path);
    if (slash == NULL)
        (void)snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        (void)snprintf(dir, sizeof(dir), "/");
    else
        path_printf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    if (mkdir_p(dir, dir_mode) != 0)
        die("socket: create directory '%s' failed: %s", dir, strerror(errno));
    if (realpath(dir, real) == NULL)
        die("socket: resolve directory '%s' failed: %s", dir, strerror(errno));
    if (stat(real, &st) != 0)
        die("socket: stat '%s' failed: %s", real, strerror(errno));
    if (st.st_uid != getuid() && st.st_uid != 0)
        die("socket: directory '%s' belongs to uid %lu: refusing to serve there", real,
            (unsigned long)st.st_uid);
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0)
        die("socket: directory '%s' is writable by others: refusing to serve there", real);
    len = strlen(real) + 1 + strlen(base) + 1;
    abs = rx__malloc(len);
    if (abs == NULL)
        die("socket: out of memory");
    (void)snprintf(abs, len, "%s%s%s", real, strcmp(real, "/") == 0 ? "" : "/", base);
    return abs;
}

/* Whoever else may write into the state directory (or is its owner) could plant jobs, work
 * files or a database there, which this daemon would run: like the socket's directory, it must
 * be ours and closed to others. The files already in it that matter must be ours, regular and
 * not writable by others; a database readable by others (older versions made it 0644) is made
 * 0600. Exits on failure. */
static void
check_state_dir(const char *dir)
{
    static const char *const files[] = {"jobs.db", "jobs.db-wal", "jobs.db-shm"};
    char path[MAIN_PATH_LEN];
    struct stat st;

    if (lstat(dir, &st) != 0)
        die("state: stat '%s' failed: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        die("state: '%s' is not a directory", dir);
    if (st.st_uid != geteuid())
        die("state: directory '%s' belongs to uid %lu, not to this user (uid %lu): refusing to "
            "use it",
            dir, (unsigned long)st.st_uid, (unsigned long)geteuid());
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        die("state: directory '%s' is writable by others (mode %04o): refusing to use it; "
            "chmod go-w it",
            dir, (unsigned)(st.st_mode & 07777));
    path_printf(path, sizeof(path), "%s/spool", dir);
    if (lstat(path, &st) == 0 &&
        (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))))
        die("state: '%s' is not a directory of this user closed to others: refusing to use it",
            path);
    for (size_t i = 0; i < RX__ARRAY_LEN(files); i++) {
        path_printf(path, sizeof(path), "%s/%s", dir, files[i]);
        if (lstat(path, &st) != 0)
            continue;
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
            (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
            die("state: '%s' is not a regular file of this user closed to others: refusing to "
                "use it",
                path);
        if ((st.st_mode & 077) != 0 && chmod(path, 0600) != 0)
            die("state: chmod 0600 '%s' failed: %s", path, strerror(errno));
    }
}

/* System mode: every directory from path up to / must be searchable by other users (o+x), or
 * they could not reach what is below it (the socket, their job's spool). Exits if one is not. */
static void
check_searchable(const char *path, const char *what)
{
    char buf[MAIN_PATH_LEN];
    struct stat st;

    path_printf(buf, sizeof(buf), "%s", path);
    for (;;) {
        char *slash;

        if (stat(buf[0] != '\0' ? buf : "/", &st) != 0)
            die("system: stat '%s' failed: %s", buf[0] != '\0' ? buf : "/", strerror(errno));
        if ((st.st_mode & S_IXOTH) == 0)
            die("system: '%s' is not searchable by other users (mode %04o): they could not "
                "reach %s; chmod o+x it",
                buf[0] != '\0' ? buf : "/", (unsigned)(st.st_mode & 07777), what);
        slash = strrchr(buf, '/');
        if (slash == NULL || buf[0] == '\0')
            return;
        *slash = '\0';
    }
}

/* System mode: the state directory and its spool/ are 0711, so that a task's supervisor,
 * running as the task's user, can reach its job's directory (spool/ID, 0700, the user's) but
 * list nothing; jobs.db and the log stay 0600. check_state_dir has vetted both. Exits on error. */
static void
open_state_dir_to_users(const char *dir)
{
    char path[MAIN_PATH_LEN];

    path_printf(path, sizeof(path), "%s/spool", dir);
    if (mkdir(path, 0711) != 0 && errno != EEXIST)
        die("state: create '%s' failed: %s", path, strerror(errno));
    if (chmod(dir, 0711) != 0 || chmod(path, 0711) != 0)
        die("state: chmod 0711 '%s' failed: %s", dir, strerror(errno));
    check_searchable(path, "their jobs' spool directories");
}

/* The socket systemd made for us (socket activation, sd_listen_fds(3) without libsystemd): if
 * LISTEN_PID is this process and LISTEN_FDS is 1, fd 3 must be a listening Unix stream socket.
 * The variables are removed either way, so no task inherits them. Returns the fd with its path
 * in *out_path (rx__malloc'd), or -1 when there is none; exits on a socket it cannot serve. */
static int
activation_socket(char **out_path)
{
    const char *pid_s = getenv("LISTEN_PID");
    const char *fds_s = getenv("LISTEN_FDS");
    struct sockaddr_un sa;
    socklen_t len = sizeof(sa);
    int64_t pid = 0, n = 0;
    int pid_ok, fds_ok, type = 0, listening = 0, fd = LISTEN_FDS_START;
    socklen_t opt_len = sizeof(int);

    if (pid_s == NULL || fds_s == NULL)
        return -1;
    pid_ok = rx__parse_i64(pid_s, 1, INT32_MAX, &pid) == RX_OK && pid == (int64_t)getpid();
    fds_ok = rx__parse_i64(fds_s, 0, INT32_MAX, &n) == RX_OK;
    (void)unsetenv("LISTEN_PID");
    (void)unsetenv("LISTEN_FDS");
    (void)unsetenv("LISTEN_FDNAMES");
    if (!pid_ok)
        return -1; /* meant for another process */
    if (!fds_ok || n != 1)
        die("socket activation: LISTEN_FDS is not 1: rxjobd serves exactly one socket");
    memset(&sa, 0, sizeof(sa));
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &opt_len) != 0 || type != SOCK_STREAM ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &opt_len) != 0 || !listening ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0 || sa.sun_family != AF_UNIX ||
        len <= offsetof(struct sockaddr_un, sun_path) || sa.sun_path[0] != '/')
        die("socket activation: fd %d is not a listening Unix stream socket with a path", fd);
    sa.sun_path[sizeof(sa.sun_path) - 1] = '\0';
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        die("socket activation: fcntl failed: %s", strerror(errno));
    *out_path = rx__strdup(sa.sun_path);
    if (*out_path == NULL)
        die("socket activation: out of memory");
    return fd;
}

/* Refuse to start when a daemon answers on path; remove a stale socket file. Exits on error. */
static void
check_socket(const char *path)
{
    struct stat st;
    pid_t pid = 0;
    int rc = http_probe_unix(path, &pid);

    if (rc == 1)
        die("another rxjobd is already serving %s (pid %ld)", path, (long)pid);
    if (rc < 0)
        die("socket: connect '%s' failed: %s", path, strerror(errno));
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return;
        die("socket: stat '%s' failed: %s", path, strerror(errno));
    }
    if (!S_ISSOCK(st.st_mode))
        die("socket: '%s' exists and is not a socket: refusing to replace it", path);
    if (unlink(path) != 0 && errno != ENOENT)
        die("socket: remove stale socket '%s' failed: %s", path, strerror(errno));
    log_line("socket: removed stale socket '%s' (nobody answered on it)", path);
}

/* Take STATE_DIR/rxjobd.lock for good, and write our pid in it. Returns its fd, or exits. */
static int
take_lock(const char *state_dir)
{
    char path[MAIN_PATH_LEN];
    char text[32];
    int fd;
    int len;

    path_printf(path, sizeof(path), "%s/rxjobd.lock", state_dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        die("lock: open '%s' failed: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int saved = errno;
        ssize_t got;

        if (saved != EWOULDBLOCK)
            die("lock: flock '%s' failed: %s", path, strerror(saved));
        got = pread(fd, text, sizeof(text) - 1, 0);
        text[got > 0 ? got : 0] = '\0';
        text[strcspn(text, "\n")] = '\0';
        die("another rxjobd (pid %s) is using the state directory %s", text[0] ? text : "?",
            state_dir);
    }
    len = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != (ssize_t)len)
        die("lock: write pid to '%s' failed: %s", path, strerror(errno));
    return fd;
}

/* ------------------------------------------------------------------------------------------ */
/* Daemonizing and signals                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Double fork. Returns in the daemon, with ready_fd set and stdio on STATE_DIR/rxjobd.log; the
 * first process waits for "ok" (exit 0, silently) or an error message (printed, exit 1). */
static void
daemonize(const char *state_dir)
{
    char log_path[MAIN_PATH_LEN];
    int fds[2];
    pid_t pid;
    int fd;

    if (pipe2(fds, O_CLOEXEC) != 0)
        die("daemon: pipe failed: %s", strerror(errno));
    (void)fflush(NULL);
    pid = fork();
    if (pid < 0)
        die("daemon: fork failed: %s", strerror(errno));
    if (pid > 0) {
        char buf[MAIN_ERR_LEN];
        size_t len = 0;
        int status;

        (void)close(fds[1]);
        for (;;) {
            ssize_t got = read(fds[0], buf + len, sizeof(buf) - 1 - len);

            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                break;
            len += (size_t)got;
            if (len == sizeof(buf) - 1)
                break;
        }
        buf[len] = '\0';
        (void)waitpid(pid, &status, 0);
        /* _exit: this process's memory and atexit handlers belong to the daemon now. */
        if (len >= 2 && memcmp(buf, "ok", 2) == 0)
            _exit(0);
        if (len > 0)
            (void)fputs(buf, stderr);
        else
            (void)fprintf(stderr, "rxjobd: daemon: it exited before serving; see %s/rxjobd.log\n",
                          state_dir);
        (void)fflush(stderr);
        _exit(1);
    }

    /* The first child: a new session, then the daemon in a second child that is no session
     * leader, so it can never acquire a controlling terminal. */
    (void)close(fds[0]);
    ready_fd = fds[1];
    if (setsid() < 0)
        die("daemon: setsid failed: %s", strerror(errno));
    pid = fork();
    if (pid < 0)
        die("daemon: fork failed: %s", strerror(errno));
    if (pid > 0)
        _exit(0);

    if (chdir("/") != 0)
        die("daemon: chdir / failed: %s", strerror(errno));
    path_printf(log_path, sizeof(log_path), "%s/rxjobd.log", state_dir);
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
        die("daemon: open /dev/null failed: %s", strerror(errno));
    (void)close(fd);
    fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        die("daemon: open log '%s' failed: %s", log_path, strerror(errno));
    if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
        die("daemon: redirect to '%s' failed: %s", log_path, strerror(errno));
    (void)close(fd);
}

static void
on_signal(int sig)
{
    int saved = errno;
    unsigned char byte = (unsigned char)sig;

    (void)!write(stop_pipe[1], &byte, 1);
    errno = saved;
}

static void
on_http_stop(void *user)
{
    unsigned char byte = 0;

    (void)user;
    (void)!write(stop_pipe[1], &byte, 1);
}

static void
install_signals(void)
{
    struct sigaction sa;

    if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        die("signals: pipe failed: %s", strerror(errno));
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        die("signals: sigaction failed: %s", strerror(errno));
}

/* Block until a stop byte arrives; returns the signal number, or 0 for /v1/daemon/stop. */
static int
wait_for_stop(void)
{
    struct pollfd pfd = {.fd = stop_pipe[0], .events = POLLIN};
    unsigned char byte = 0;

    for (;;) {
        if (poll(&pfd, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_line("signals: poll failed: %s, stopping", strerror(errno));
            return 0;
        }
        if (read(stop_pipe[0], &byte, 1) == 1)
            return byte;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Options                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static int64_t
parse_opt_i64(const char *name, const char *value, int64_t min, int64_t max)
{
    int64_t x;

    if (rx__parse_i64(value, min, max, &x) != RX_OK) {
        (void)fprintf(stderr, "rxjobd: %s '%s' is not a whole number from %lld to %lld\n", name,
                      value, (long long)min, (long long)max);
        exit(2);
    }
    return x;
}

static void
parse_options(int argc, char **argv, main_opts *o)
{
    enum {
        OPT_SOCKET = 256,
        OPT_STATE_DIR,
        OPT_SLOTS,
        OPT_HOLD,
        OPT_GRACE_MS,
        OPT_FOREGROUND,
        OPT_EXECUTOR,
        OPT_POLL_MS,
        OPT_LISTEN,
        OPT_TLS_CERT,
        OPT_TLS_KEY,
        OPT_TOKENS,
        OPT_SYSTEM,
        OPT_LIMIT
    };
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, OPT_SOCKET},
        {"state-dir", required_argument, NULL, OPT_STATE_DIR},
        {"slots", required_argument, NULL, OPT_SLOTS},
        {"hold", no_argument, NULL, OPT_HOLD},
        {"grace-ms", required_argument, NULL, OPT_GRACE_MS},
        {"foreground", no_argument, NULL, OPT_FOREGROUND},
        {"executor", required_argument, NULL, OPT_EXECUTOR},
        {"slurm-poll-ms", required_argument, NULL, OPT_POLL_MS},
        {"system", no_argument, NULL, OPT_SYSTEM},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"tokens", required_argument, NULL, OPT_TOKENS},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    o->slots = cpus < 1 ? 1 : cpus > MAIN_MAX_SLOTS ? MAIN_MAX_SLOTS : (unsigned)cpus;
    o->grace_ms = MAIN_DEFAULT_GRACE_MS;
    rx_limits_default(&o->limits);
    for (;;) {
        int c = getopt_long(argc, argv, "", longopts, NULL);

        if (c == -1)
            break;
        switch (c) {
        case OPT_SOCKET:
            rx__free(o->socket_path);
            o->socket_path = rx__strdup(optarg);
            break;
        case OPT_STATE_DIR:
            rx__free(o->state_dir);
            o->state_dir = rx__strdup(optarg);
            break;
        case OPT_SLOTS:
            o->slots = (unsigned)parse_opt_i64("--slots", optarg, 1, MAIN_MAX_SLOTS);
            break;
        case OPT_HOLD:
            o->hold = 1;
            break;
        case OPT_GRACE_MS:
            o->grace_ms = parse_opt_i64("--grace-ms", optarg, 0, MAIN_MAX_GRACE_MS);
            break;
        case OPT_EXECUTOR:
            if (strcmp(optarg, "local") != 0 && strcmp(optarg, "slurm") != 0) {
                (void)fprintf(stderr, "rxjobd: --executor '%s' is not local or slurm\n", optarg);
                exit(2);
            }
            o->executor = strcmp(optarg, "slurm") == 0 ? "slurm" : "local";
            break;
        case OPT_POLL_MS:
            o->poll_ms = parse_opt_i64("--slurm-poll-ms", optarg, 10, MAIN_MAX_POLL_MS);
            break;
        case OPT_FOREGROUND:
            o->foreground = 1;
            break;
        case OPT_SYSTEM:
            o->system = 1;
            break;
        case OPT_LISTEN:
            if (o->tcp.listen != NULL) {
                (void)fprintf(stderr, "rxjobd: --listen: one address only (got '%s' and '%s')\n",
                              o->tcp.listen, optarg);
                exit(2);
            }
            o->tcp.listen = optarg;
            break;
        case OPT_TLS_CERT:
            o->tcp.tls_cert = optarg;
            break;
        case OPT_TLS_KEY:
            o->tcp.tls_key = optarg;
            break;
        case OPT_TOKENS:
            o->tcp.tokens = optarg;
            break;
        case OPT_LIMIT: {
            char why[MAIN_ERR_LEN];

            if (rx_limits_set(&o->limits, optarg, why, sizeof(why)) != RX_OK) {
                (void)fprintf(stderr, "rxjobd: --limit %s\n", why);
                exit(2);
            }
            break;
        }
        case 'v':
            log_max_level = RX_LOG_DEBUG;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            (void)printf("rxjobd %s\n", rx_version());
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc) {
        (void)fprintf(stderr, "rxjobd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        exit(2);
    }
    if (o->system) {
        if (geteuid() != 0) {
            (void)fprintf(stderr, "rxjobd: --system needs root: it serves every user and runs "
                                  "each task as the user who submitted it (without --system, "
                                  "rxjobd is a per-user daemon)\n");
            exit(2);
        }
        if (o->executor != NULL && strcmp(o->executor, "slurm") == 0) {
            (void)fprintf(stderr, "rxjobd: --system needs --executor local (the Slurm executor "
                                  "does not run tasks as their submitters)\n");
            exit(2);
        }
        if (o->socket_path == NULL)
            o->socket_path = rx__strdup(SYSTEM_SOCKET);
        if (o->state_dir == NULL)
            o->state_dir = rx__strdup(SYSTEM_STATE_DIR);
    }
    if (o->socket_path == NULL)
        o->socket_path = default_socket_path();
    if (o->state_dir == NULL)
        o->state_dir = default_state_dir();
    if (o->socket_path == NULL || o->state_dir == NULL)
        die("options: no socket path or state directory (set $HOME or use --state-dir)");
}

/* `rxjobd --shim ARGS...`: become rxjob-shim --shim ARGS... (fd 3, the signal mask and the
 * environment carry over). Returns only on failure, with exit status 127. */
static int
shim_alias(char **argv)
{
    char self[PATH_MAX], err[PATH_MAX + 128];
    char *path = NULL;
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    int fd = -1;

    if (len <= 0) {
        (void)fprintf(stderr, "rxjobd --shim: readlink /proc/self/exe failed: %s\n",
                      strerror(errno));
        return 127;
    }
    self[len] = '\0';
    if (exec_local_shim_open(self, NULL, &path, &fd, err, sizeof(err)) != RX_OK) {
        (void)fprintf(stderr, "rxjobd --shim: %s\n", err);
        return 127;
    }
    close(fd);
    argv[0] = path;
    (void)execv(path, argv);
    (void)fprintf(stderr, "rxjobd --shim: exec '%s' failed: %s\n", path, strerror(errno));
    rx__free(path);
    return 127;
}

/* ------------------------------------------------------------------------------------------ */
/* Over the network                                                                            */
/* ------------------------------------------------------------------------------------------ */

static void refuse(const char *fmt, ...) RX_PRINTF(1, 2);

/* A configuration rxjobd will not run with: say why and exit 2, before anything started. */
static void
refuse(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vline(fmt, ap);
    va_end(ap);
    exit(2);
}

/* Check --listen and its companions against the rules (main.c's head comment), and read the
 * token file, certificate and key. Exits 2 on any refusal. */
static void
tcp_prepare(const struct main_tcp *t, int system, main_tcp_setup *out)
{
    char errbuf[MAIN_ERR_LEN] = "";
    int tls = t->tls_cert != NULL || t->tls_key != NULL;

    memset(out, 0, sizeof(*out));
    if (t->listen == NULL) {
        if (tls || t->tokens != NULL)
            refuse("--tls-cert, --tls-key and --tokens go with --listen HOST:PORT");
        return;
    }
    if (tcp_parse_listen(t->listen, &out->addr, errbuf, sizeof(errbuf)) != RX_OK)
        refuse("%s", errbuf);
    if (!out->addr.is_loopback && (!tls || t->tokens == NULL))
        refuse("--listen %s is not a loopback address: serving it needs TLS (--tls-cert FILE "
               "--tls-key FILE) and tokens (--tokens FILE), and %s: refusing to start",
               t->listen,
               !tls && t->tokens == NULL ? "both are missing"
               : !tls                    ? "TLS is missing"
                                         : "tokens are missing");
    if (t->tokens == NULL)
        refuse("--listen %s needs --tokens FILE: anyone on this host can connect to a loopback "
               "port, and only a token tells who calls over TCP: refusing to start",
               t->listen);
    if (tls && (t->tls_cert == NULL || t->tls_key == NULL))
        refuse("--tls-cert and --tls-key go together: %s is missing",
               t->tls_cert == NULL ? "--tls-cert" : "--tls-key");
    if (tls && !http_tls_supported())
        refuse("--tls-cert: this libmicrohttpd was built without TLS (GnuTLS): refusing to start");
    if (auth_tokens_load(t->tokens, geteuid(), &out->tokens, errbuf, sizeof(errbuf)) != RX_OK)
        refuse("--tokens: %s", errbuf);
    if (tls) {
        if (tcp_read_pem(t->tls_cert, "--tls-cert", &out->cert_pem, errbuf, sizeof(errbuf)) !=
                RX_OK ||
            tcp_read_pem(t->tls_key, "--tls-key", &out->key_pem, errbuf, sizeof(errbuf)) != RX_OK ||
            tcp_check_tls(out->cert_pem, out->key_pem, errbuf, sizeof(errbuf)) != RX_OK)
            refuse("%s", errbuf);
    }
    /* A root daemon outside system mode runs every task as root: a token of another user would
     * hand that user root. Only --system runs each task as its owner. */
    if (!system && auth_tokens_count_others(out->tokens, geteuid()) > 0)
        refuse("--tokens: %zu of %zu tokens map to users other than this daemon's (uid %lu), whose "
               "tasks would run as uid %lu: map every token to uid %lu, or serve every user with "
               "--system (tasks run as their owners)",
               auth_tokens_count_others(out->tokens, geteuid()), auth_tokens_count(out->tokens),
               (unsigned long)geteuid(), (unsigned long)geteuid(), (unsigned long)geteuid());
    out->enabled = 1;
}

/* ------------------------------------------------------------------------------------------ */

int
main(int argc, char **argv)
{
    char errbuf[MAIN_ERR_LEN] = "";
    char self_exe[PATH_MAX];
    char real_state[PATH_MAX];
    main_opts o = {0};
    engine_opts eo;
    engine *e = NULL;
    http_server *srv = NULL;
    http_opts ho;
    struct stat sock_st;
    main_tcp_setup tcp;
    http_tcp_opts hto;
    struct timespec now;
    char *socket_path;
    ssize_t len;
    int listen_fd = -1;
    int activated = 0; /* the socket came from systemd, which owns its file */
    int lock_fd;
    int sig;
    rx_err err;

    if (argc > 1 && strcmp(argv[1], "--shim") == 0)
        return shim_alias(argv);

    /* Everything the daemon creates is its user's alone (jobs.db and its -wal and -shm
     * included); the tasks get the umask the daemon was started with back (exec_local.c). */
    {
        char mask[16];
        mode_t task_umask = umask(077);

        (void)snprintf(mask, sizeof(mask), "%04o", (unsigned)task_umask);
        if (setenv(ENGINE_TASK_UMASK_ENV, mask, 1) != 0)
            die("environment: setenv failed: %s", strerror(errno));
    }
    rx_set_log(log_sink, NULL);

    parse_options(argc, argv, &o);
    tcp_prepare(&o.tcp, o.system, &tcp);

    /* Paths, made absolute: the daemon leaves its working directory for "/". */
    if (mkdir_p(o.state_dir, 0700) != 0)
        die("state: create directory '%s' failed: %s", o.state_dir, strerror(errno));
    if (realpath(o.state_dir, real_state) == NULL)
        die("state: resolve '%s' failed: %s", o.state_dir, strerror(errno));
    check_state_dir(real_state);
    if (o.system)
        open_state_dir_to_users(real_state);
    listen_fd = activation_socket(&socket_path);
    activated = listen_fd >= 0;
    if (!activated) {
        socket_path = prepare_socket_path(o.socket_path, o.system ? 0755 : 0700);
        check_socket(socket_path);
    }
    if (o.system) {
        char dir[MAIN_PATH_LEN];

        path_printf(dir, sizeof(dir), "%s", socket_path);
        *strrchr(dir, '/') = '\0';
        check_searchable(dir[0] != '\0' ? dir : "/", "the socket");
    }

    if (!o.foreground)
        daemonize(real_state);

    lock_fd = take_lock(real_state);

    len = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    if (len <= 0)
        die("daemon: readlink /proc/self/exe failed: %s", strerror(errno));
    self_exe[len] = '\0';

    install_signals();

    memset(&eo, 0, sizeof(eo));
    eo.state_dir = real_state;
    eo.slots = o.slots;
    eo.hold = o.hold;
    eo.grace_ms = o.grace_ms;
    eo.self_exe = self_exe;
    eo.executor = o.executor;
    eo.poll_ms = o.poll_ms;
    eo.system = o.system;
    eo.limits = &o.limits;
    err = engine_open(&eo, &e, errbuf, sizeof(errbuf));
    if (err != RX_OK)
        die("cannot start: %s (state directory '%s')", errbuf[0] ? errbuf : rx_strerror(err),
            real_state);

    err = activated ? RX_OK : http_listen_unix(socket_path, &listen_fd, errbuf, sizeof(errbuf));
    if (err != RX_OK && errno == EADDRINUSE) {
        /* Another daemon bound it since check_socket: say who, as check_socket would. */
        pid_t pid = 0;

        if (http_probe_unix(socket_path, &pid) == 1) {
            engine_close(e);
            die("another rxjobd is already serving %s (pid %ld)", socket_path, (long)pid);
        }
    }
    if (err != RX_OK) {
        engine_close(e);
        die("socket: %s", errbuf);
    }
    /* Everyone may connect in system mode: who they are comes from SO_PEERCRED. */
    if (o.system && chmod(socket_path, 0666) != 0) {
        int saved = errno;

        if (!activated)
            (void)unlink(socket_path);
        engine_close(e);
        die("socket: chmod 0666 '%s' failed: %s", socket_path, strerror(saved));
    }
    if (activated || stat(socket_path, &sock_st) != 0)
        memset(&sock_st, 0, sizeof(sock_st));

    memset(&hto, 0, sizeof(hto));
    if (tcp.enabled) {
        err = tcp_listen(&tcp.addr, &hto.listen_fd, errbuf, sizeof(errbuf));
        if (err != RX_OK) {
            (void)close(listen_fd);
            (void)unlink(socket_path);
            engine_close(e);
            die("tcp: %s", errbuf);
        }
        tcp_url(&tcp.addr, tcp.cert_pem != NULL, tcp.url, sizeof(tcp.url));
        hto.url = tcp.url;
        hto.tls_cert_pem = tcp.cert_pem;
        hto.tls_key_pem = tcp.key_pem;
        hto.tokens = tcp.tokens;
        tcp.tokens = NULL; /* the server's from http_start on */
        if (tcp.cert_pem == NULL)
            log_line("tcp: serving plain HTTP on %s: tokens cross loopback in clear (meant for a "
                     "TLS-terminating proxy on this host)",
                     tcp.url);
    }

    (void)clock_gettime(CLOCK_REALTIME, &now);
    memset(&ho, 0, sizeof(ho));
    ho.listen_fd = listen_fd;
    ho.socket_path = socket_path;
    ho.state_dir = real_state;
    ho.started_s = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    ho.on_stop = on_http_stop;
    ho.tcp = tcp.enabled ? &hto : NULL;
    err = http_start(&ho, e, &srv, errbuf, sizeof(errbuf));
    /* The server keeps its own copies of the certificate and key. */
    tcp_pem_free(tcp.cert_pem);
    tcp_pem_free(tcp.key_pem);
    tcp.cert_pem = tcp.key_pem = NULL;
    if (err != RX_OK) {
        if (!activated)
            (void)unlink(socket_path);
        engine_close(e);
        die("http: start failed: %s", errbuf);
    }

    log_line("started: pid %ld, socket %s%s, state dir %s, executor %s, %u slots%s%s%s%s",
             (long)getpid(), socket_path, activated ? " (from systemd)" : "", real_state,
             o.executor != NULL ? o.executor : "local", o.slots, o.hold ? ", holding jobs" : "",
             o.system ? ", system mode" : "", tcp.enabled ? ", listening on " : "",
             tcp.enabled ? tcp.url : "");
    if (ready_fd >= 0) {
        (void)!write(ready_fd, "ok", 2);
        (void)close(ready_fd);
        ready_fd = -1;
    }

    sig = wait_for_stop();
    if (sig != 0)
        log_line("stopping: got signal %d", sig);
    else
        log_line("stopping: asked over HTTP");

    /* Stop accepting, then remove the socket file (if it is still ours), then let the requests
     * in progress end, then close the engine they use. */
    http_quiesce(srv);
    {
        struct stat st;

        if (!activated && stat(socket_path, &st) == 0 && st.st_ino == sock_st.st_ino &&
            st.st_dev == sock_st.st_dev)
            (void)unlink(socket_path);
    }
    http_stop(srv);
    engine_close(e);
    log_line("stopped");
    (void)close(lock_fd);
    rx__free(socket_path);
    rx__free(o.socket_path);
    rx__free(o.state_dir);
    return 0;
}
