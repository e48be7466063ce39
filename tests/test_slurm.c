/*
 * test_slurm.c - the pure parts of talking to Slurm (src/server/slurm.c): squeue and sacct
 * lines, array task lists, the state mapping of docs/slurm.md, --time, the batch script, and
 * running a command (with a time limit, stdin, and both outputs). No Slurm is needed here;
 * tests/check_slurm.sh drives a real one.
 */
#include "core/internal.h"
#include "server/slurm.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h needs the declarations of the headers above. */
#include <cmocka.h>

/* ------------------------------------------------------------------------------------------ */

typedef struct ranges {
    char text[256];
    size_t len;
} ranges;

static void
collect(uint64_t first, uint64_t last, void *user)
{
    ranges *r = user;
    int n = snprintf(r->text + r->len, sizeof(r->text) - r->len, "%s%llu-%llu", r->len ? "," : "",
                     (unsigned long long)first, (unsigned long long)last);

    if (n > 0)
        r->len += (size_t)n;
}

struct range_case {
    const char *tasks;
    uint64_t n_tasks;
    int want_rc;
    const char *want;
};

static const struct range_case range_cases[] = {
    {"7", 10, 0, "7-7"},
    {"4-499%4", 500, 0, "4-499"},
    {"[4-499%4]", 500, 0, "4-499"},
    {"0,2,5-9", 10, 0, "0-0,2-2,5-9"},
    {"1-9:4%2", 10, 0, "1-1,5-5,9-9"},
    {"8-20", 10, 0, "8-9"},               /* clipped to the job's tasks */
    {"12", 10, 0, ""},                    /* outside: ignored */
    {"N/A", 10, -1, ""},                  /* not an array */
    {"5-3", 10, -1, ""},                  /* backwards */
    {"3-", 10, -1, ""},                   /* cut short */
    {"1-9:0", 10, -1, ""},                /* step 0 */
    {"3x", 10, -1, ""},                   /* garbage */
    {"", 10, -1, ""},                     /* empty */
    {"99999999999999999999", 10, -1, ""}, /* overflow */
};

static void
test_slurm_task_ranges_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(range_cases); i++) {
        const struct range_case *tc = &range_cases[i];
        ranges r;

        memset(&r, 0, sizeof(r));
        assert_int_equal(slurm_task_ranges(tc->tasks, tc->n_tasks, collect, &r), tc->want_rc);
        if (tc->want_rc == 0)
            assert_string_equal(r.text, tc->want);
    }
}

static void
test_slurm_parse_squeue_line(void **state)
{
    char line[] = "123|4-499%4|PENDING|JobArrayTaskLimit|/var/lib/rx|job dir\n";
    char run[] = "123|3|RUNNING|None|/spool/1";
    char bad1[] = "abc|3|RUNNING|None|x";
    char bad2[] = "123|3|RUNNING";
    char bad3[] = "123||RUNNING|None|x";
    slurm_line sl;

    (void)state;
    assert_int_equal(slurm_parse_squeue_line(line, &sl), 0);
    assert_int_equal(sl.array_job_id, 123);
    assert_string_equal(sl.tasks, "4-499%4");
    assert_string_equal(sl.state, "PENDING");
    assert_string_equal(sl.reason, "JobArrayTaskLimit");
    assert_string_equal(sl.comment, "/var/lib/rx|job dir"); /* the rest of the line */
    assert_int_equal(slurm_parse_squeue_line(run, &sl), 0);
    assert_string_equal(sl.comment, "/spool/1");
    assert_int_equal(slurm_parse_squeue_line(bad1, &sl), -1);
    assert_int_equal(slurm_parse_squeue_line(bad2, &sl), -1);
    assert_int_equal(slurm_parse_squeue_line(bad3, &sl), -1);
}

static void
test_slurm_parse_sacct_line(void **state)
{
    char one[] = "77_4|TIMEOUT|None";
    char range[] = "77_[5-9]|CANCELLED by 0|None";
    char plain[] = "78|COMPLETED|None";
    char step[] = "77_4.batch|COMPLETED|";
    char bad[] = "77_[5-9|FAILED|x";
    slurm_acct_line al;

    (void)state;
    assert_int_equal(slurm_parse_sacct_line(one, &al), 0);
    assert_int_equal(al.array_job_id, 77);
    assert_string_equal(al.tasks, "4");
    assert_string_equal(al.state, "TIMEOUT");
    assert_int_equal(slurm_parse_sacct_line(range, &al), 0);
    assert_string_equal(al.tasks, "5-9");
    assert_string_equal(al.state, "CANCELLED");
    assert_int_equal(slurm_parse_sacct_line(plain, &al), 0);
    assert_string_equal(al.tasks, "");
    assert_int_equal(slurm_parse_sacct_line(step, &al), -1);
    assert_int_equal(slurm_parse_sacct_line(bad, &al), -1);
}

struct phase_case {
    const char *state;
    slurm_phase want;
};

/* The mapping of docs/slurm.md, one row per state the issue names, and a few more. */
static const struct phase_case phase_cases[] = {
    {"PENDING", SLURM_QUEUED},        {"CONFIGURING", SLURM_QUEUED},
    {"RUNNING", SLURM_RUNNING},       {"COMPLETING", SLURM_RUNNING},
    {"COMPLETED", SLURM_DONE_OK},     {"FAILED", SLURM_DONE_FAIL},
    {"TIMEOUT", SLURM_DONE_FAIL},     {"OUT_OF_MEMORY", SLURM_DONE_FAIL},
    {"NODE_FAIL", SLURM_DONE_FAIL},   {"BOOT_FAIL", SLURM_DONE_FAIL},
    {"DEADLINE", SLURM_DONE_FAIL},    {"PREEMPTED", SLURM_DONE_FAIL},
    {"CANCELLED", SLURM_DONE_FAIL},   {"CANCELLED by 1000", SLURM_DONE_FAIL},
    {"SUSPENDED", SLURM_RUNNING},     {"REQUEUED", SLURM_QUEUED},
    {"SOMETHING_NEW", SLURM_RUNNING}, /* unknown: wait, never decide */
    {"COMPLETEDX", SLURM_RUNNING},
};

static void
test_slurm_state_phase_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(phase_cases); i++)
        assert_int_equal(slurm_state_phase(phase_cases[i].state), phase_cases[i].want);
}

struct failure_case {
    const char *state;
    const char *reason;
    const char *record;
    rx_task_state want_state;
    const char *want_text; /* a part of the message */
};

static const struct failure_case failure_cases[] = {
    {"TIMEOUT", "TimeLimit", NULL, RX_TASK_TIMEOUT,
     "time limit: Slurm ended the task at its time "
     "limit (TIMEOUT, reason TimeLimit)"},
    {"DEADLINE", "None", NULL, RX_TASK_TIMEOUT, "time limit"},
    {"OUT_OF_MEMORY", "", NULL, RX_TASK_SIGNALED, "(OUT_OF_MEMORY)"},
    {"NODE_FAIL", "None", NULL, RX_TASK_LOST, "node failed (NODE_FAIL)"},
    {"BOOT_FAIL", "None", NULL, RX_TASK_LOST, "(BOOT_FAIL)"},
    {"PREEMPTED", "None", NULL, RX_TASK_LOST, "preempted (PREEMPTED)"},
    {"CANCELLED by 0", "None", NULL, RX_TASK_SIGNALED, "not through rxjob (CANCELLED)"},
    {"FAILED", "NonZeroExitCode", NULL, RX_TASK_START_FAILED, "reason NonZeroExitCode"},
    {"TIMEOUT", "None", "killed by signal 15 (SIGTERM)", RX_TASK_TIMEOUT,
     "(TIMEOUT); the task: killed by signal 15 (SIGTERM)"},
    {"REVOKED", "None", NULL, RX_TASK_LOST, "(REVOKED)"},
};

static void
test_slurm_failure_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(failure_cases); i++) {
        const struct failure_case *tc = &failure_cases[i];
        rx_task_state ts = RX_TASK_OK;
        char buf[512];

        slurm_failure(tc->state, tc->reason, tc->record, &ts, buf, sizeof(buf));
        assert_int_equal(ts, tc->want_state);
        if (strstr(buf, tc->want_text) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, buf, tc->want_text);
    }
}

static void
test_slurm_time_minutes(void **state)
{
    (void)state;
    assert_int_equal(slurm_time_minutes(0, 1000), 0);
    assert_int_equal(slurm_time_minutes(1, 1000), 1);
    assert_int_equal(slurm_time_minutes(44000, 1000), 1);    /* 44 + 1 + 15 = 60 s */
    assert_int_equal(slurm_time_minutes(44001, 1000), 2);    /* rounded up */
    assert_int_equal(slurm_time_minutes(3600000, 1000), 61); /* never below the task's limit */
}

static void
test_slurm_batch_script(void **state)
{
    char *s;

    (void)state;
    s = slurm_batch_script("/opt/rx job/rxjob-shim", "/srv/it's/spool/7", 20, 2000, 1000, 1,
                           1048576, 268435456);
    assert_non_null(s);
    assert_true(strncmp(s, "#!/bin/sh\n", 10) == 0);
    assert_non_null(strstr(s, "exec '/opt/rx job/rxjob-shim' --shim '/srv/it'\\''s/spool/7' - 20 "
                              "2000 1000 1 1048576 268435456\n"));
    rx__free(s);
}

static void
test_slurm_run_cmd(void **state)
{
    const char *cat[] = {"cat", NULL};
    const char *sh[] = {"sh", "-c", "echo out; echo err >&2; echo last >&2; exit 3", NULL};
    const char *slow[] = {"sleep", "10", NULL};
    const char *none[] = {"rxjob-no-such-program", NULL};
    char big[100000];
    char why[256];
    slurm_run r;

    (void)state;
    memset(big, 'x', sizeof(big)); /* more than a pipe holds: fed while read */
    assert_int_equal(slurm_run_cmd(cat, big, sizeof(big), 10000, &r), RX_OK);
    assert_true(slurm_run_ok(&r));
    assert_int_equal(r.out_len, sizeof(big));
    slurm_run_free(&r);

    assert_int_equal(slurm_run_cmd(sh, NULL, 0, 10000, &r), RX_OK);
    assert_false(slurm_run_ok(&r));
    assert_string_equal(r.out, "out\n");
    assert_string_equal(r.err, "err\nlast");
    slurm_run_why(&r, why, sizeof(why));
    assert_string_equal(why, "last");
    slurm_run_free(&r);

    assert_int_equal(slurm_run_cmd(slow, NULL, 0, 200, &r), RX_OK);
    assert_true(r.timed_out);
    assert_false(slurm_run_ok(&r));
    slurm_run_free(&r);

    assert_int_equal(slurm_run_cmd(none, NULL, 0, 1000, &r), RX_OK);
    assert_false(slurm_run_ok(&r));
    slurm_run_why(&r, why, sizeof(why));
    assert_non_null(strstr(why, "No such file"));
    slurm_run_free(&r);
}

static void
test_slurm_err_transient(void **state)
{
    (void)state;
    assert_true(slurm_err_transient("sbatch: error: Batch job submission failed: Unable to contact "
                                    "slurm controller (connect failure)"));
    assert_true(slurm_err_transient("squeue: error: Socket timed out on send/recv operation"));
    assert_false(slurm_err_transient("sbatch: error: Batch job submission failed: Invalid job "
                                     "array specification"));
    assert_false(slurm_err_transient(NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slurm_task_ranges_table),
        cmocka_unit_test(test_slurm_parse_squeue_line),
        cmocka_unit_test(test_slurm_parse_sacct_line),
        cmocka_unit_test(test_slurm_state_phase_table),
        cmocka_unit_test(test_slurm_failure_table),
        cmocka_unit_test(test_slurm_time_minutes),
        cmocka_unit_test(test_slurm_batch_script),
        cmocka_unit_test(test_slurm_run_cmd),
        cmocka_unit_test(test_slurm_err_transient),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
