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
 * `rxjobd --shim ...` is not a daemon at all: the engine re-runs rxjobd as a task supervisor.
 */
#define _GNU_SOURCE /* pipe2, getopt_long */

#include "core/internal.h"
#include "server/engine.h"
#include "server/http.h"
#include "server/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAIN_MAX_SLOTS        4096     /* --slots at most (RX_MAX_WORKERS) */
#define MAIN_MAX_GRACE_MS     3600000  /* --grace-ms at most: one hour */
#define MAIN_DEFAULT_GRACE_MS 1000     /* --grace-ms default */
#define MAIN_ERR_LEN          1024     /* one error line, bytes */
#define MAIN_PATH_LEN         PATH_MAX /* a path we build, bytes */
#define MAIN_MAX_POLL_MS      600000   /* --slurm-poll-ms at most: ten minutes */

typedef struct main_opts {
    char *socket_path;
    char *state_dir;
    unsigned slots;
    int hold;
    int64_t grace_ms;
    int foreground;
    const char *executor; /* "local" or "slurm" */
    int64_t poll_ms;      /* --slurm-poll-ms; 0 = the executor's default */
    rx_limits limits;     /* --limit NAME=VALUE (limits.h) */
} main_opts;

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

static void log_line(const char *fmt, ...) RX_PRINTF(1, 2);

/* One log line on stderr: "rxjobd: " then the message, as "component: what: why". */
static void
log_line(const char *fmt, ...)
{
    char line[MAIN_ERR_LEN];
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(line, sizeof(line), fmt, ap) < 0)
        line[0] = '\0';
    va_end(ap);
    (void)fprintf(stderr, "rxjobd: %s\n", line);
    (void)fflush(stderr);
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
        "              [--foreground] [--executor local|slurm] [--slurm-poll-ms MS]\n"
        "              [--limit NAME=VALUE]...\n"
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

/* mkdir -p with mode 0700 for what it creates; the last component must end up a directory. */
static int
mkdir_p(const char *path)
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
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
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
prepare_socket_path(const char *path)
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
    if (mkdir_p(dir) != 0)
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
    if (o->socket_path == NULL)
        o->socket_path = default_socket_path();
    if (o->state_dir == NULL)
        o->state_dir = default_state_dir();
    if (o->socket_path == NULL || o->state_dir == NULL)
        die("options: no socket path or state directory (set $HOME or use --state-dir)");
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
    struct timespec now;
    char *socket_path;
    ssize_t len;
    int listen_fd = -1;
    int lock_fd;
    int sig;
    rx_err err;

    if (argc > 1 && strcmp(argv[1], "--shim") == 0)
        return engine_shim_main(argc - 1, argv + 1);

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

    /* Paths, made absolute: the daemon leaves its working directory for "/". */
    if (mkdir_p(o.state_dir) != 0)
        die("state: create directory '%s' failed: %s", o.state_dir, strerror(errno));
    if (realpath(o.state_dir, real_state) == NULL)
        die("state: resolve '%s' failed: %s", o.state_dir, strerror(errno));
    check_state_dir(real_state);
    socket_path = prepare_socket_path(o.socket_path);
    check_socket(socket_path);

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
    eo.limits = &o.limits;
    err = engine_open(&eo, &e, errbuf, sizeof(errbuf));
    if (err != RX_OK)
        die("engine: open '%s' failed: %s", real_state, errbuf[0] ? errbuf : rx_strerror(err));

    err = http_listen_unix(socket_path, &listen_fd, errbuf, sizeof(errbuf));
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
    if (stat(socket_path, &sock_st) != 0)
        memset(&sock_st, 0, sizeof(sock_st));

    (void)clock_gettime(CLOCK_REALTIME, &now);
    memset(&ho, 0, sizeof(ho));
    ho.listen_fd = listen_fd;
    ho.socket_path = socket_path;
    ho.state_dir = real_state;
    ho.started_s = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    ho.on_stop = on_http_stop;
    err = http_start(&ho, e, &srv, errbuf, sizeof(errbuf));
    if (err != RX_OK) {
        (void)unlink(socket_path);
        engine_close(e);
        die("http: start failed: %s", errbuf);
    }

    log_line("started: pid %ld, socket %s, state dir %s, executor %s, %u slots%s", (long)getpid(),
             socket_path, real_state, o.executor != NULL ? o.executor : "local", o.slots,
             o.hold ? ", holding jobs" : "");
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

        if (stat(socket_path, &st) == 0 && st.st_ino == sock_st.st_ino &&
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
