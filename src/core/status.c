/*
 * status.c - the job status rules of DESIGN.md section 2, as pure functions (no I/O).
 *
 * Three tables hold the rules: the names of the six job statuses (revoscalepy's enum member
 * names, so they can cross the wire and the CLI as they are), the names of the task states, and
 * the legal status moves. Everything else reads them. rx__job_status_from_counts is the only
 * place in rxjob that turns what is known of a job's tasks into its status: the contexts, the
 * server and the CLI all ask it, so the rules live in one spot.
 *
 * Every function accepts any value of its enum type, including numbers outside the enum (they
 * may come from a file, the wire or a cast), and answers "INVALID", 0 or RX_EINVAL for them.
 */
#include "core/status.h"

#include "core/internal.h"

static const char *const job_status_names[RX_JOB_STATUS_COUNT] = {
    [RX_JOB_QUEUED] = "QUEUED",     [RX_JOB_RUNNING] = "RUNNING",
    [RX_JOB_FINISHED] = "FINISHED", [RX_JOB_FAILED] = "FAILED",
    [RX_JOB_CANCELED] = "CANCELED", [RX_JOB_UNDETERMINED] = "UNDETERMINED",
};

static const char *const task_state_names[RX_TASK_STATE_COUNT] = {
    [RX_TASK_OK] = "OK",           [RX_TASK_ERROR] = "ERROR",
    [RX_TASK_EXIT] = "EXIT",       [RX_TASK_SIGNALED] = "SIGNALED",
    [RX_TASK_TIMEOUT] = "TIMEOUT", [RX_TASK_START_FAILED] = "START_FAILED",
    [RX_TASK_LOST] = "LOST",       [RX_TASK_NOT_RUN] = "NOT_RUN",
    [RX_TASK_STOPPED] = "STOPPED",
};

/*
 * legal_moves[from][to] is 1 when a job may go from `from` to `to` (DESIGN.md section 2). Never
 * backwards, never to itself; UNDETERMINED is absorbing. Only cleanup leaves a terminal status.
 */
static const unsigned char legal_moves[RX_JOB_STATUS_COUNT][RX_JOB_STATUS_COUNT] = {
    [RX_JOB_QUEUED] = {[RX_JOB_RUNNING] = 1, [RX_JOB_CANCELED] = 1, [RX_JOB_FAILED] = 1},
    [RX_JOB_RUNNING] = {[RX_JOB_FINISHED] = 1, [RX_JOB_FAILED] = 1, [RX_JOB_CANCELED] = 1},
    [RX_JOB_FINISHED] = {[RX_JOB_UNDETERMINED] = 1},
    [RX_JOB_FAILED] = {[RX_JOB_UNDETERMINED] = 1},
    [RX_JOB_CANCELED] = {[RX_JOB_UNDETERMINED] = 1},
    [RX_JOB_UNDETERMINED] = {0},
};

/* The cast to unsigned turns negative numbers into large ones, so one test covers both ends. */
static int
job_status_is_valid(rx_job_status status)
{
    return (unsigned)status < (unsigned)RX_JOB_STATUS_COUNT;
}

static int
task_state_is_valid(rx_task_state state)
{
    return (unsigned)state < (unsigned)RX_TASK_STATE_COUNT;
}

/* ASCII-only, so the answer does not depend on the locale (strcasecmp's does: Turkish 'i'). */
static char
ascii_upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

static int
ascii_equal_nocase(const char *a, const char *b)
{
    for (;;) {
        if (ascii_upper(*a) != ascii_upper(*b))
            return 0;
        if (*a == '\0')
            return 1;
        a++;
        b++;
    }
}

const char *
rx_job_status_name(rx_job_status status)
{
    if (!job_status_is_valid(status))
        return "INVALID";
    return job_status_names[status];
}

rx_err
rx_job_status_parse(const char *name, rx_job_status *out_status)
{
    if (name == NULL || out_status == NULL)
        return RX_EINVAL;

    for (size_t i = 0; i < RX__ARRAY_LEN(job_status_names); i++) {
        if (ascii_equal_nocase(name, job_status_names[i])) {
            *out_status = (rx_job_status)i;
            return RX_OK;
        }
    }
    return RX_EINVAL;
}

int
rx_job_status_is_terminal(rx_job_status status)
{
    switch (status) {
    case RX_JOB_FINISHED:
    case RX_JOB_FAILED:
    case RX_JOB_CANCELED:
    case RX_JOB_UNDETERMINED:
        return 1;
    case RX_JOB_QUEUED:
    case RX_JOB_RUNNING:
    case RX_JOB_STATUS_COUNT:
        break;
    }
    return 0;
}

const char *
rx_task_state_name(rx_task_state state)
{
    if (!task_state_is_valid(state))
        return "INVALID";
    return task_state_names[state];
}

int
rx__status_can_move(rx_job_status from, rx_job_status to)
{
    if (!job_status_is_valid(from) || !job_status_is_valid(to))
        return 0;
    return legal_moves[from][to];
}

int
rx__task_state_is_failure(rx_task_state state)
{
    return state != RX_TASK_OK;
}

rx_job_status
rx__job_status_from_counts(const rx__task_counts *c)
{
    size_t ended;

    if (c == NULL || c->total == 0)
        return RX_JOB_UNDETERMINED;

    /*
     * Counts that do not add up to total describe no job that can exist: a caller's bug. Say
     * so with UNDETERMINED rather than guess. Each term is checked against total first, so the
     * sum cannot wrap around.
     */
    if (c->pending > c->total || c->running > c->total || c->ok > c->total || c->failed > c->total)
        return RX_JOB_UNDETERMINED;
    if (c->pending + c->running + c->ok + c->failed != c->total)
        return RX_JOB_UNDETERMINED;

    ended = c->ok + c->failed;

    /*
     * A canceled job reads RUNNING until every task process is gone, then CANCELED, whatever
     * its tasks did: cancel was accepted while the job was QUEUED or RUNNING, and queued tasks
     * never start. With nothing started that is CANCELED at once.
     */
    if (c->cancel_requested)
        return c->running > 0 ? RX_JOB_RUNNING : RX_JOB_CANCELED;

    if (ended == c->total)
        return c->failed == 0 ? RX_JOB_FINISHED : RX_JOB_FAILED;
    if (c->running > 0 || ended > 0)
        return RX_JOB_RUNNING;
    return RX_JOB_QUEUED;
}
