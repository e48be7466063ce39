/*
 * spawn.h - task processes: start a command or fork a worker, each in a process group of its
 * own, watch it through a pidfd, signal its whole group, and reap it.
 *
 * The process group is the unit of a task: a time limit or a cancel signals the group, so the
 * task's own children go too. The group is killed before the leader is reaped, while the
 * leader's pid (which is the group's id) cannot yet be reused by an unrelated process.
 */
#ifndef RX_EXEC_SPAWN_H
#define RX_EXEC_SPAWN_H

#include "rxjob.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct rx__proc {
    pid_t pid; /* also its process group id; 0 = none */
    int pidfd; /* readable once the process has exited; -1 = none */
} rx__proc;

typedef struct rx__spawn_req {
    const char *const *argv; /* NULL-terminated; argv[0] searched in PATH if it has no '/' */
    char *const *envp;       /* full environment, NULL-terminated */
    const char *cwd;         /* NULL = inherit */
    const char *stdin_path;  /* NULL = /dev/null */
    int out_fd;              /* becomes fds 1 and 2 */
} rx__spawn_req;

/*
 * Start argv with posix_spawn in a new process group, signals reset to their defaults and an
 * empty signal mask. RX_OK; RX_ESYSTEM with *out_errno set when it could not start (ENOENT:
 * no such program; EACCES: not executable; ...). A pidfd that cannot be opened is not an error
 * (pidfd = -1; the caller then polls).
 */
rx_err rx__spawn(const rx__spawn_req *req, rx__proc *out_proc, int *out_errno);

/*
 * fork() a worker in a new process group that dies with its parent (PR_SET_PDEATHSIG). Returns
 * the child's pid in the parent (with *out_proc filled), 0 in the child, -1 with errno on
 * failure. The caller flushes stdio before, so the child does not write the parent's buffers.
 */
pid_t rx__fork_worker(rx__proc *out_proc);

/* Send sig to the process's whole group. 0, or -1 with errno (ESRCH when it is gone). */
int rx__proc_signal_group(const rx__proc *p, int sig);

/* 1 if the process has exited (its pidfd is readable, or waitid says so), 0 if not. */
int rx__proc_exited(const rx__proc *p);

/*
 * Kill what is left of the process's group with SIGKILL, then reap the process (blocking) and
 * close its pidfd. *out_wstatus gets the waitpid status. RX_OK; RX_ESYSTEM if waitpid failed.
 */
rx_err rx__proc_reap(rx__proc *p, int *out_wstatus);

/*
 * Move fd to 3 or above (close-on-exec) if it is 0, 1 or 2, and return the new fd; -1 stays -1.
 * A caller that runs with stdin, stdout or stderr closed would otherwise get our files on those
 * numbers, and the dup2 that wires a task's stdio would clobber them.
 */
int rx__fd_above_stdio(int fd);

/*
 * SIGCHLD must not be ignored while tasks run: with SIG_IGN or SA_NOCLDWAIT the kernel discards
 * every child's exit status. hold sets it to the default for the duration if it is ignored
 * (process-wide, counted, so concurrent jobs share one change); release restores it after the
 * last holder.
 */
void rx__sigchld_hold(void);
void rx__sigchld_release(void);

/* Describe a waitpid status: "exit status 2", "killed by signal 9 (SIGKILL)". */
void rx__wait_status_text(int wstatus, char *buf, size_t len);

/* Name of a signal: "SIGKILL"; "SIG?" for an unknown number. Static storage. */
const char *rx__signal_name(int sig);

/* /proc/PID/stat field 22: the process's start time in clock ticks since boot, which tells a
 * process from a later one that reused its pid. 0, or -1 if there is no such process. */
int rx__proc_start_time(pid_t pid, uint64_t *out_start);

/* From /proc/PID/stat: the state letter (field 3: 'R', 'S', 'Z', ...), the session id (field 6)
 * and the start time (field 22); out_state and out_session may be NULL. No allocation (callable
 * in a child between fork and exec, or of a threaded process). 0, or -1 (no such process). */
int rx__proc_stat(pid_t pid, char *out_state, pid_t *out_session, uint64_t *out_start);

/* SIGKILL every live process of session sid that started no earlier than min_start (clock ticks
 * since boot, as rx__proc_stat's), except the caller itself, and, unless only_uid is
 * (uid_t)-1, only those whose real or saved uid is only_uid (what kill(2) lets that user
 * signal: a root daemon acts for a user this way without a helper process the user could
 * stop). Each process is signalled through a pidfd opened and checked again first, so a pid
 * reused meanwhile is never hit. Rescans until a pass finds none (a process may fork
 * meanwhile), at most 20 passes. Reads /proc with getdents64 into a stack buffer: no
 * allocation. How many processes were signalled (0 also when /proc is not there). Used for what
 * a task leaves in its supervisor's session: by the supervisor when the task ends, by the
 * daemon when the supervisor vanished (exec_local_kill_orphan). */
int rx__kill_session(pid_t sid, uint64_t min_start, uid_t only_uid);

/* Wait for this process's child pid to exit, at most timeout_ms; past that, SIGKILL it and reap
 * it. For children that have become another user, who can stop them (SIGSTOP) or leave them
 * waiting on a file system of theirs: the caller must not block on them for ever. 0 with
 * *out_wstatus; 1 when the deadline killed it (*out_wstatus then says SIGKILL); -1 with errno
 * (not a child). */
int rx__wait_child_deadline(pid_t pid, int64_t timeout_ms, int *out_wstatus);

/* What rx__run_as runs as the user: its return value (0..125) is the child's exit status. It runs
 * in the child of a threaded process: no locks another thread may have held at the fork. */
typedef int (*rx__as_fn)(void *arg);

/*
 * Fork, become the user, run fn(arg), wait at most timeout_ms. The child drops every privilege
 * before fn: setgroups(groups, n_groups) (none when n_groups is 0), setresgid(gid x3),
 * setresuid(uid x3), each checked, then checks that root cannot be regained (setuid(0), and
 * setgid(0) unless gid is 0, must fail; getresuid/getresgid must say uid and gid throughout); any
 * failure exits 126 before fn runs. All signals are blocked in the child. The wait is
 * rx__wait_child_deadline's: a user who stops the child (SIGSTOP) or keeps it busy delays the
 * caller timeout_ms at most, then it is killed and reaped.
 * Returns fn's value (0..125); -1 with errno: EINVAL (uid 0: there is nothing to drop, the
 * caller must not run fn as root this way), fork's errno, EPERM (the child could not become the
 * user), ETIMEDOUT (killed at the deadline), ECHILD (it died otherwise).
 * Thread-safe: callable from any thread, concurrently.
 */
int rx__run_as(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups, rx__as_fn fn, void *arg,
               int64_t timeout_ms);

#endif
