/*
 * exec_local.h - rxjobd's local executor: one supervisor process ("shim") per task, so that
 * tasks outlive the daemon (docs/engine.md "Shim protocol").
 *
 * The daemon side spawns the supervisor binary, `rxjob-shim` (src/shim/shim.c, found next to
 * rxjobd or at $RXJOBD_SHIM), as
 *     rxjob-shim --shim JOB_DIR INDEX N_TASKS TIMEOUT_MS GRACE_MS HAS_ARGS OUTPUT_BYTES
 * RESULT_BYTES [COUNT STOP_ON_FAILURE] (a chunk of function tasks; executing the file the daemon
 * opened at start, so a rebuilt or removed binary does not fail the tasks) in a session of its own
 * with the cancel signals blocked and a socket on fd 3; the shim waits on fd 3 for "go" (sent once
 * the task's start is committed to the store), runs the task, enforces its time limit, stops it on
 * SIGTERM/SIGINT/SIGUSR1, writes the exit record and exits. When fd 3 reaches end-of-file without
 * "go" (the daemon died, or could not record the start), the shim writes a record with go 0 and
 * exits without starting anything, so the task may be started again without running twice.
 *
 * The daemon watches shims through pidfds, which work for processes that are not its children
 * too: that is how a restarted daemon adopts the shims of its predecessor.
 */
#ifndef RX_SERVER_EXEC_LOCAL_H
#define RX_SERVER_EXEC_LOCAL_H

#include "rxjob.h"
#include "store/spool.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct exec_shim {
    pid_t pid;           /* 0 once reaped (exec_local_release) */
    pid_t sid;           /* its pid, kept: the session it leads (exec_local_kill_orphan) */
    int pidfd;           /* readable once the shim has exited; -1 = none */
    uint64_t start_time; /* /proc/PID/stat field 22, to tell the shim from a reused pid */
    int go_fd;           /* the daemon's end of fd 3 until "go" is sent; -1 after */
    int went;            /* 1: this daemon sent it "go" (its record cannot truthfully say go 0) */
    unsigned char end_head[5]; /* exec_local_read_end: the end message's "E" and length ... */
    size_t end_got;            /* ... bytes of it received so far ... */
    char *end_buf;             /* ... and its record (owned; NULL between messages), */
    size_t end_cap;            /* ... room for end_cap bytes of it (+ a NUL) */
    int64_t acked_ms;          /* sched.c: when it was told "k" (rx__now_ms); 0 = not, or killed */
} exec_shim;

typedef struct exec_shim_req {
    const char *shim_exe; /* the supervisor's path: its argv[0], and what runs if shim_fd < 0 */
    int shim_fd;          /* exec_local_shim_open's fd of that binary (what runs), or -1 */
    const char *job_dir;  /* STATE_DIR/spool/<id> */
    uint64_t idx;
    uint64_t n_tasks;
    int64_t timeout_ms; /* 0 = none */
    int64_t grace_ms;   /* SIGTERM -> SIGKILL */
    int has_args;
    uint64_t output_bytes; /* console output kept, bytes; 0 = no cap (limits.h) */
    uint64_t result_bytes; /* the largest result, bytes */
    uint64_t count;        /* > 0: a chunk, tasks idx .. idx + count - 1 of function work under
                              this one supervisor (one exec of the program); 0: task idx alone */
    int stop_on_failure;   /* a chunk stops at its first failure (continue_on_failure off) */
    const void *work;      /* the job's encoded work (store/work.h), sent to the shim with its
                              task (exec_local_assign), or NULL: it reads JOB_DIR/work. Borrowed */
    size_t work_len;       /* bytes at work: at most SHIM_WORK_INLINE_MAX */
    uid_t uid;      /* who the task runs as: the job's owner in system mode (engine_opts.system),
                       else the daemon's own uid; a root daemon starts the shim as this user */
    char *why;      /* NULL, or where a one-line reason goes when the shim cannot be started */
    size_t why_len; /* bytes at why */
} exec_shim_req;

/* The file name of the supervisor binary, installed next to rxjobd. */
#define EXEC_SHIM_NAME       "rxjob-shim"
/* The environment variable naming another supervisor binary (tests, unusual installs). */
#define EXEC_SHIM_ENV        "RXJOBD_SHIM"
/* The one argument of a blank shim (exec_local_spawn_blank), and the most bytes of arguments
 * exec_local_assign sends it (a job directory is at most PATH_MAX). */
#define SHIM_BLANK_ARG       "--blank"
/* How many empty arguments follow it: bytes of argument space the shim overwrites with its task
 * ("--shim JOB_DIR INDEX") once assigned; ps(1) shows no trace of them before. */
#define SHIM_TITLE_ROOM      160u
/* The most bytes of work exec_local_assign sends with a task (a job's argv and environment,
 * with a small stdin): well inside an empty socket buffer, so the send never waits for the shim.
 * Larger work goes through the JOB_DIR/work file. */
#define SHIM_WORK_INLINE_MAX (32u * 1024)
#define SHIM_ASSIGN_MAX      8192u

/*
 * Find the supervisor binary and open it (O_PATH, close-on-exec) so that it can be executed for
 * as long as the daemon runs, even once its file is replaced or removed (a rebuild, an
 * upgrade). Which binary: shim_exe if not NULL, else $RXJOBD_SHIM if set and not empty, else
 * EXEC_SHIM_NAME in self_exe's directory.
 * @param out_path  The absolute path found, owned (rx__free).
 * @param out_fd    The open fd; the caller closes it.
 * @return RX_OK; RX_EINVAL (not found, not executable, not an ELF file such as a script: errbuf
 *         says which path and why);
 *         RX_ENOMEM.
 */
rx_err exec_local_shim_open(const char *self_exe, const char *shim_exe, char **out_path,
                            int *out_fd, char *errbuf, size_t errlen);

/* 1 if a task of uid runs as another user than the daemon: the daemon is root and uid is not
 * (rxjobd --system). Then exec_local_spawn starts the shim with that user's credentials and
 * environment (docs/rxjobd.8 "System mode"), and never as root. */
int exec_local_as_user(uid_t uid);

/* Whether path is a directory uid can reach, asked with uid's groups, gid and uid only (from a
 * child that has become the user), so that a submission tells a user nothing of directories it
 * cannot search. 1 yes, 0 no, -1 it could not be told (no such user, fork failed). */
int exec_local_dir_ok_as(uid_t uid, const char *path);

/* Spawn a blank shim for the task of req (`rxjob-shim --blank`); give it its task with
 * exec_local_assign, then it waits for exec_local_go. For a task of another user
 * (exec_local_as_user(req->uid)), the job directory and the files the daemon wrote there are
 * given to the user first, and the shim runs with the user's supplementary groups, gid and uid
 * (set in that order and checked before exec) and only HOME, USER, LOGNAME and SHELL of the
 * user's passwd entry in its environment. RX_OK; RX_ESYSTEM with *out_errno (EAGAIN, ENOMEM:
 * try again later) and, if req->why is set, the reason ("no user with uid 1234 in the passwd
 * database", "setgid(1001) failed: ..."). */
rx_err exec_local_spawn(const exec_shim_req *req, exec_shim *out_shim, int *out_errno);

/* A blank shim spawned before its task is known (sched.c spares): exec_local_spawn as the
 * daemon's own user, without a job. RX_OK; RX_ESYSTEM with *out_errno. */
rx_err exec_local_spawn_blank(const char *shim_exe, int shim_fd, exec_shim *out_shim,
                              int *out_errno);

/* Give a blank shim its task and claim it in one message: "a", a 4-byte little-endian length,
 * the arguments exec_local_spawn would have passed (after argv[0], each NUL-terminated); then,
 * when req->work is set, "w", its length in 4 bytes and the work itself (the shim reads no work
 * file then); then "c". From then on it is the claimed shim of that task, exactly as one spawned
 * for it. Never blocks (MSG_DONTWAIT: the message fits the empty socket). 0, or -1 when the
 * shim is gone or the message could not be sent whole (errno). */
int exec_local_assign(exec_shim *sh, const exec_shim_req *req);

/* Get rid of an unclaimed shim: close go_fd, SIGKILL it, reap it, close its pidfd. It has
 * started nothing and writes no record. */
void exec_local_discard(exec_shim *sh);

/* Tell the shim to start its task. go_fd stays open: when the task has ended, the shim sends
 * its exit record on it (exec_local_read_end) and waits for "k" (exec_local_ack) before it
 * exits, writing no record file; without "k" (go_fd closed: the daemon died) it writes the
 * record file durably. A shim that died meanwhile is not an error here: its pidfd says so. */
void exec_local_go(exec_shim *sh);

/* go_fd is readable: read what there is of the shim's end message ("E", a 4-byte
 * little-endian length, its exit record: src/shim/shim.c end_acked), keeping a part in sh. 1
 * when the whole message is in: *out_err is spool_run_exit_parse's for the run [first,
 * first + count) (a task's own record is a run of one; RX_OK with *out_rec, to free with
 * spool_run_exit_free; RX_EINVAL for a malformed record; RX_ENOMEM), and the shim waits for
 * "k"; 0 for not yet; -1 for end-of-file, an error or anything else than an end message (go_fd
 * is closed: its pidfd tells the rest, and its record file if it wrote one). */
int exec_local_read_end(exec_shim *sh, uint64_t first, uint64_t count, spool_run_exit *out_rec,
                        rx_err *out_err);

/* The end of the shim's task is recorded durably: send "k" (the shim exits without writing a
 * record file) and close go_fd. */
void exec_local_ack(exec_shim *sh);

/* Close go_fd without "go": the shim writes a go-0 exit record and exits. */
void exec_local_abandon(exec_shim *sh);

/* Send sig to the shim (not to the task: the shim stops the task its own way). 0 or -1. */
int exec_local_signal(const exec_shim *sh, int sig);

/* The shim has exited (its pidfd was readable): reap it if it is this process's child, close
 * its pidfd. */
void exec_local_release(exec_shim *sh);

/* Wait for an abandoned shim to exit and release it (it exits at once). */
void exec_local_wait_abandoned(exec_shim *sh);

/* Adopt a shim recorded as (pid, start_time): 1 with *out_shim filled if that very process is
 * alive (or an unreaped zombie), 0 if it is gone. */
int exec_local_adopt(pid_t pid, uint64_t start_time, exec_shim *out_shim);

/* /proc/PID/stat field 22 (start time in clock ticks since boot). 0, or -1 if no such process. */
int exec_local_proc_start(pid_t pid, uint64_t *out_start);

/* A shim vanished without an exit record: kill what is left of its task (task idx). The shim
 * was a session leader (setsid) and the task runs in its session, so its orphans are the live
 * processes of session shim->sid started no earlier than shim->start_time; none when another
 * process, or the shim itself alive, holds that pid (a session id stays taken while any process
 * has it, so a reused pid means no process of the old session is left); a zombie shim (adopted,
 * not yet reaped) still has them. No file is read: the task cannot point the daemon at anyone
 * else's processes. For a task of another user (system mode) only processes whose real or saved
 * uid is uid are signalled, as kill(2) would let that user; all in the caller's thread
 * (rx__kill_session: pidfds, no helper process a user could stop). A task that left the session
 * (setsid) is out of reach, as it always was. */
void exec_local_kill_orphan(const exec_shim *shim, uint64_t idx, uid_t uid);

#endif
