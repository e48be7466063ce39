/*
 * slurm.h - talking to Slurm through its commands: running them (sbatch, squeue, scancel,
 * scontrol, sacct) with a time limit and their output captured, parsing what they print, and
 * mapping Slurm's job states onto rxjob's task states (docs/slurm.md "States").
 *
 * Why commands and not libslurm: libslurm's API changes with every Slurm release (its ABI is
 * versioned per release, and Debian ships no stable headers for it), while the commands'
 * parsable output is stable and is what sites script against. Why squeue's --format and not
 * --json: in Slurm 22.05 `squeue --json` ignores --jobs and prints every job with ~100 fields
 * (about 3.5 KB per job record, so a 500-task array kept for MinJobAge is 1.7 MB per poll),
 * while "%F|%K|%T|%r|%k" is about 40 bytes a line and has every field rxjobd needs.
 *
 * Everything here but slurm_run is pure (no I/O) and tested in tests/test_slurm.c.
 */
#ifndef RX_SERVER_SLURM_H
#define RX_SERVER_SLURM_H

#include "rxjob.h"

#include <stddef.h>
#include <stdint.h>

#define SLURM_OUT_MAX_BYTES ((size_t)64 * 1024 * 1024) /* a command's stdout kept, at most */
#define SLURM_ERR_MAX_BYTES ((size_t)4096)             /* a command's stderr kept, at most */

/* What a command did. */
typedef struct slurm_run {
    int started; /* 0: it could not be started (errno_start says why) */
    int errno_start;
    int timed_out; /* killed after the time limit */
    int wstatus;   /* waitpid status, when started */
    char *out;     /* stdout, NUL-terminated (rx__free); truncated at SLURM_OUT_MAX_BYTES */
    size_t out_len;
    char *err; /* stderr, NUL-terminated, trailing newlines removed (rx__free) */
    size_t err_len;
} slurm_run;

/* Run argv (argv[0] searched in PATH) with stdin_data on its standard input, in the daemon's
 * environment, with no other descriptor inherited; kill it (SIGKILL) after timeout_ms. RX_OK
 * when it was run (whatever its exit: see slurm_run_ok); RX_ENOMEM. */
rx_err slurm_run_cmd(const char *const *argv, const void *stdin_data, size_t stdin_len,
                     int64_t timeout_ms, slurm_run *out_run);

/* 1 if the command ran and exited 0. */
int slurm_run_ok(const slurm_run *r);

/* One line of why it failed, into buf: its stderr's last line, else its exit status. */
void slurm_run_why(const slurm_run *r, char *buf, size_t len);

void slurm_run_free(slurm_run *r);

/* 1 if a failed command's message says slurmctld could not be reached or was too busy: worth
 * trying again later, nothing was decided. */
int slurm_err_transient(const char *err);

/* Where a job state puts a task. */
typedef enum slurm_phase {
    SLURM_QUEUED = 0, /* PENDING, CONFIGURING, REQUEUED...: not started */
    SLURM_RUNNING,    /* RUNNING, COMPLETING, SUSPENDED...: its processes may exist */
    SLURM_DONE_OK,    /* COMPLETED: how it ended is the exit record's to say */
    SLURM_DONE_FAIL,  /* FAILED, TIMEOUT, CANCELLED, NODE_FAIL...: over, and not well */
} slurm_phase;

/* The phase of a state name as squeue (%T) or sacct (State, first word) print it. A name
 * unknown to this version is RUNNING: rxjobd then waits rather than decide wrongly. */
slurm_phase slurm_state_phase(const char *state);

/* How a task that Slurm ended in a failure state (phase SLURM_DONE_FAIL) failed: its state and
 * a message that carries Slurm's state and reason ("time limit: Slurm ended the task at its
 * time limit (TIMEOUT, reason TimeLimit)"). record_text, if not NULL, is what the task's
 * own exit record said, appended. */
void slurm_failure(const char *state, const char *reason, const char *record_text,
                   rx_task_state *out_state, char *buf, size_t len);

/* A line of `squeue --noheader --format=%F|%K|%T|%r|%k`. Borrowed from the parsed line. */
typedef struct slurm_line {
    int64_t array_job_id;
    const char *tasks;   /* "7", "4-499%4", "0,2,5-9:2%3", or "N/A" for a job that is no array */
    const char *state;   /* "RUNNING" */
    const char *reason;  /* "None", "Resources", ... */
    const char *comment; /* the rest of the line */
} slurm_line;

/* Split line (modified in place) into *out. 0, or -1 if it is not such a line. */
int slurm_parse_squeue_line(char *line, slurm_line *out);

/* Call fn(first, last, user) for each range of the array task list tasks ("4-499%4": 4..499;
 * a step "1-9:2" gives each index as its own range), ignoring indices >= n_tasks. 0, or -1 if
 * the list is malformed (nothing was called for the malformed part on). */
typedef void slurm_range_fn(uint64_t first, uint64_t last, void *user);
int slurm_task_ranges(const char *tasks, uint64_t n_tasks, slurm_range_fn *fn, void *user);

/* A line of `sacct --noheader --parsable2 --allocations --format=JobID,State,Reason`: the
 * JobID is "123_4" (one array task), "123_[5-9]" (tasks never started), or "123". Borrowed. */
typedef struct slurm_acct_line {
    int64_t array_job_id;
    const char *tasks; /* "4", "5-9", or "" for a job that is no array */
    const char *state; /* first word of State ("CANCELLED by 0" -> "CANCELLED") */
    const char *reason;
} slurm_acct_line;

int slurm_parse_sacct_line(char *line, slurm_acct_line *out);

/* --time for a task time limit: whole minutes, rounded up, with room for the supervisor's own
 * limit (timeout_ms), its SIGTERM-to-SIGKILL grace and its exit record to come first: Slurm's
 * limit is the backstop. 0 when timeout_ms is 0 (no limit). */
int64_t slurm_time_minutes(int64_t timeout_ms, int64_t grace_ms);

/* The batch script that runs one array task's supervisor: "#!/bin/sh\nexec 'SHIM' --shim
 * 'JOB_DIR' - N TIMEOUT_MS GRACE_MS HAS_ARGS OUTPUT_BYTES RESULT_BYTES\n", paths single-quoted
 * (SHIM: the rxjob-shim binary, by a path the compute hosts share). rx__free'd by the caller;
 * NULL when out of memory. */
char *slurm_batch_script(const char *shim_exe, const char *job_dir, uint64_t n_tasks,
                         int64_t timeout_ms, int64_t grace_ms, int has_args, uint64_t output_bytes,
                         uint64_t result_bytes);

#endif
