/*
 * spool.h - the spool: STATE_DIR/spool/<job id>/, one directory per job, holding what a job's
 * tasks read and write as files (DESIGN.md section 4 "Store"):
 *
 *   work          the job's work (store/work.h encoding), written before its first task starts
 *   args          the per-task arguments (store/work.h), when the job has them
 *   stdin         the bytes every task reads on its standard input, when given
 *   t<i>.out      task i's console output (stdout and stderr)
 *   t<i>.result   task i's result ($RXJOB_RESULT)
 *   t<i>.arg      task i's argument for function work ($RXJOB_ARG); removed when it ends
 *   t<i>.error    a function's failure message ($RXJOB_ERROR); removed when it ends
 *   t<i>.exit     the exit record, written atomically by the supervisor as its last act when
 *                 the daemon did not take it over fd 3 and record the end ("k")
 *
 * The exit record is the one file the daemon trusts to learn how a task ended; the format is in
 * spool.c and docs/engine.md.
 */
#ifndef RX_STORE_SPOOL_H
#define RX_STORE_SPOOL_H

#include "rxjob.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* How deep spool_remove_dir goes into subdirectories a task made in its job directory. */
#define SPOOL_MAX_DEPTH 16

/* "<state_dir>/spool/<id>" into buf. 0, or -1 when it does not fit. */
int spool_job_dir(const char *state_dir, int64_t id, char *buf, size_t len);

/* "<job_dir>/t<idx><suffix>" into buf. 0, or -1 when it does not fit. */
int spool_task_path(const char *job_dir, uint64_t idx, const char *suffix, char *buf, size_t len);

/* "<job_dir>/r<first>.out" into buf: the output of the task a chunk starting at task first is
 * running (docs/engine.md "Chunks"; src/client/registry.c names it alike). 0, or -1 when it
 * does not fit. */
int spool_run_out_path(const char *job_dir, uint64_t first, char *buf, size_t len);

/* Write data to dir/name through dir/name.tmp and rename, so a reader sees all or nothing.
 * durable: fsync the file before the rename and the directory after. RX_OK; RX_EIO (errno). */
rx_err spool_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                          int durable);

/* Create dir/name.tmp afresh for writing (anything already there is removed first; O_EXCL,
 * O_NOFOLLOW, O_CLOEXEC, 0600); path of the temporary file to tmp. fd or -1. */
int spool_tmp_open(const char *dir, const char *name, char *tmp, size_t tmp_len);

/* Close fd (from spool_tmp_open) and rename its file to dir/name. RX_OK; RX_EIO. */
rx_err spool_tmp_commit(int fd, const char *tmp, const char *dir, const char *name, int durable);

/* Remove a job directory and everything in it. The daemon's spool holds no subdirectories, but
 * a task that owns its job directory (system mode) may have made some: they are removed too, up
 * to SPOOL_MAX_DEPTH levels down, never following a symlink. Run as root on a directory that
 * belongs to a user (given with spool_give_job_dir), its content is removed by a child process
 * with that user's uid and gid only, so nothing the user could not remove itself goes (a
 * directory of root's files that the user's task moved in there stays, and so does the job
 * directory); the empty directory is then removed by the caller. A directory that does not exist
 * is fine. RX_OK; RX_EIO. */
rx_err spool_remove_dir(const char *path);

/* Give a job directory to the user whose tasks run in it (rxjobd --system: the task's supervisor
 * runs as that user and writes its output, results and exit record there). The files the daemon
 * wrote there (work, stdin, args) become the user's, so the supervisor can read them: each is
 * opened without following symlinks and changed through its fd only if it is a regular file
 * of the daemon's own with a single link, so nothing the user planted in its place is given
 * away. Then the directory itself (opened O_NOFOLLOW), unless it is the user's already. Called
 * before each task's start, so files rewritten by a restarted daemon are given again.
 * RX_OK; RX_EIO with errno. */
rx_err spool_give_job_dir(const char *job_dir, uid_t uid, gid_t gid);

/*
 * Open a spool file for reading the way every reader of the spool must: a task may have put
 * anything in its place (a FIFO, a device, a symlink), and open(2) of a FIFO blocks until a
 * writer comes, so it is opened O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC and anything but a regular
 * file is refused. The fd reads as a regular file does (O_NONBLOCK means nothing to one).
 * A root daemon (system mode) also refuses a file with more than one link: a task that owns its
 * job directory could otherwise hard-link a file it may not read (where fs.protected_hardlinks
 * is off) and have the daemon read it out as its result or output.
 * @param out_st  If not NULL, the file's fstat.
 * @return The fd, or -1 with errno: ENOENT (none), ELOOP (a symlink), EINVAL (not a regular
 *         file, or a linked one read by root), or open's own.
 */
int spool_open_read(const char *path, struct stat *out_st);

/* Read a whole regular file (not following a symlink) of at most max bytes; *out_data is owned
 * (rx__free) and NUL-terminated. RX_OK; RX_ENOENT; RX_ETOOBIG (with *out_len = its size);
 * RX_EINVAL (not a regular file, or a symlink); RX_ENOMEM; RX_EIO. Never blocks on a FIFO. */
rx_err spool_read_file(const char *path, size_t max, void **out_data, size_t *out_len);

/* How a task ended, as its supervisor saw it. */
typedef struct spool_exit {
    int go;              /* 0: the daemon never said "go": the task never ran and may start again */
    rx_task_state state; /* meaningful when go */
    int exit_status;     /* or -1 */
    int signal;          /* or 0 */
    pid_t task_pid;      /* the task's pid (= its process group), or 0 if it never started */
    double started_s;    /* UTC seconds, or 0 */
    double ended_s;
    char *error; /* owned; NULL for OK */
    /* Where an OK task's result is (store.h store_task_row): result_run 0 = t<i>.result; k > 0
     * = result_len bytes at result_off of t<k-1>.results. Only in a run's record. */
    uint64_t result_run, result_off, result_len;
} spool_exit;

/* The longest error message an exit record keeps, in bytes (longer ones are cut). */
#define SPOOL_ERROR_MAX_BYTES 4096

/* The largest exit record, in bytes (an error message is cut well below it). */
#define SPOOL_EXIT_RECORD_MAX (64 * 1024)

/* The exit record of rec as text (the format of docs/engine.md "Exit record"), NUL-terminated
 * after *out_len bytes, owned by the caller (rx__free). RX_OK; RX_EIO; RX_ENOMEM. */
rx_err spool_exit_format(const spool_exit *rec, char **out_buf, size_t *out_len);

/* The end message a supervisor sends its daemon on fd 3: "E", the length of the record text in
 * 4 bytes little-endian, the text (a task's exit record, or a run's: exec_local_read_end).
 * *out_len bytes at *out_buf, owned by the caller (rx__free). RX_OK; RX_EINVAL (empty, or 4 GiB
 * or more); RX_ENOMEM. */
rx_err spool_end_message(const char *text, size_t len, char **out_buf, size_t *out_len);

/* spool_end_message of rec's exit record (spool_exit_format). RX_OK; RX_EIO; RX_ENOMEM. */
rx_err spool_exit_message(const spool_exit *rec, char **out_buf, size_t *out_len);

/* Parse an exit record of len bytes at data, which must be followed by a NUL (data[len] ==
 * '\0'; parsing writes NULs into it). RX_OK with *out_rec (free with spool_exit_free);
 * RX_EINVAL when malformed (anything a task could have written); RX_ENOMEM. */
rx_err spool_exit_parse(char *data, size_t len, spool_exit *out_rec);

/* Write task idx's exit record: t<i>.exit.tmp, fsync, rename, fsync the directory. RX_OK;
 * RX_EIO. */
rx_err spool_exit_write(const char *job_dir, uint64_t idx, const spool_exit *rec);

/* Read task idx's exit record. RX_OK; RX_ENOENT (none yet); RX_EINVAL (malformed); RX_ENOMEM;
 * RX_EIO. Free with spool_exit_free. */
rx_err spool_exit_read(const char *job_dir, uint64_t idx, spool_exit *out_rec);

void spool_exit_free(spool_exit *rec);

/*
 * The exit record of a run: tasks [first, first + count) of one job under one supervisor (a
 * chunk of function tasks, docs/engine.md "Chunks"), sent on fd 3 like a task's, or written to
 * t<first>.exit:
 *
 *   rxjob-chunk 1
 *   go 1
 *   first 40
 *   count 10
 *   tasks 3
 *   task 40
 *   result_at 41 0 17                  (result_run result_off result_len)
 *   state OK ... error N <N bytes>     (the fields of a task's record, as above)
 *   task 41 ...
 *
 * One entry per task that started, in index order (every one of them ended: the supervisor
 * decides how); a task of the run without an entry never started.
 */
typedef struct spool_run_exit {
    int go; /* 0: never told to start: no task of the run ran */
    uint64_t first;
    uint64_t count;
    size_t n;          /* entries */
    uint64_t *idx;     /* n indices, ascending, each in [first, first + count) */
    spool_exit *tasks; /* n records (go 1) */
} spool_run_exit;

/* The largest record of a run of count tasks, in bytes. */
size_t spool_run_exit_max(uint64_t count);

/* A run's record as text, NUL-terminated after *out_len bytes, owned by the caller (rx__free).
 * RX_OK; RX_EIO; RX_ENOMEM. */
rx_err spool_run_exit_format(const spool_run_exit *rec, char **out_buf, size_t *out_len);

/* Write a run's record as t<first>.exit, durably (as spool_exit_write). RX_OK; RX_ENOMEM;
 * RX_EIO. */
rx_err spool_run_exit_write(const char *job_dir, const spool_run_exit *rec);

/* Parse the record of the run [first, first + count) (len bytes at data, data[len] == '\0'):
 * a run's record, or a task's (a run of one: its entry, or none when it says go 0). RX_OK with
 * *out_rec (free with spool_run_exit_free); RX_EINVAL (malformed, or another run's); RX_ENOMEM. */
rx_err spool_run_exit_parse(char *data, size_t len, uint64_t first, uint64_t count,
                            spool_run_exit *out_rec);

/* Read t<first>.exit as the record of the run [first, first + count). RX_OK; RX_ENOENT (none);
 * RX_EINVAL; RX_ENOMEM; RX_EIO. */
rx_err spool_run_exit_read(const char *job_dir, uint64_t first, uint64_t count,
                           spool_run_exit *out_rec);

void spool_run_exit_free(spool_run_exit *rec);

#endif
