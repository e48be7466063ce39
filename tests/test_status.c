/*
 * test_status.c - the job status rules (src/core/status.c): names, parsing, terminal statuses,
 * every status move, and the status of a job from its task counts.
 *
 * The transition test spells out the whole 6x6 matrix of DESIGN.md section 2, so every illegal
 * move is checked as well as every legal one. The last test drives small jobs through every
 * possible step and checks that the status derived from the counts only ever makes legal moves,
 * which ties the two halves of the module together.
 */
#include "core/internal.h"
#include "core/status.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* cmocka.h needs the declarations of the headers above. */
#include <cmocka.h>

/* Values outside rx_job_status, as they could arrive from a cast, a file or the wire. */
static const int bad_status_values[] = {-1000, -2, -1, RX_JOB_STATUS_COUNT, 7, 255, 1 << 20};

/* ------------------------------------------------------------------------------------------ */

static void
test_status_can_move_every_pair(void **state)
{
    enum { Q = RX_JOB_QUEUED, R = RX_JOB_RUNNING, FI = RX_JOB_FINISHED, FA = RX_JOB_FAILED };
    enum { C = RX_JOB_CANCELED, U = RX_JOB_UNDETERMINED };
    /* want[from][to], written out in full: rows are `from`, columns `to`. */
    static const int want[RX_JOB_STATUS_COUNT][RX_JOB_STATUS_COUNT] = {
        /*          Q  R  FI FA C  U */
        [Q] = {0, 1, 0, 1, 1, 0},  [R] = {0, 0, 1, 1, 1, 0}, [FI] = {0, 0, 0, 0, 0, 1},
        [FA] = {0, 0, 0, 0, 0, 1}, [C] = {0, 0, 0, 0, 0, 1}, [U] = {0, 0, 0, 0, 0, 0},
    };
    size_t n_legal = 0;

    (void)state;
    for (int from = 0; from < RX_JOB_STATUS_COUNT; from++) {
        for (int to = 0; to < RX_JOB_STATUS_COUNT; to++) {
            int got = rx__status_can_move((rx_job_status)from, (rx_job_status)to);

            if (got != want[from][to])
                fail_msg("can_move(%s, %s) = %d, want %d", rx_job_status_name(from),
                         rx_job_status_name(to), got, want[from][to]);
            n_legal += (size_t)got;
        }
    }
    /* QUEUED: 3, RUNNING: 3, FINISHED/FAILED/CANCELED: 1 each, UNDETERMINED: 0. */
    assert_int_equal(n_legal, 9);
}

static void
test_status_can_move_out_of_range(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(bad_status_values); i++) {
        rx_job_status bad = (rx_job_status)bad_status_values[i];

        assert_int_equal(rx__status_can_move(bad, bad), 0);
        for (int s = 0; s < RX_JOB_STATUS_COUNT; s++) {
            assert_int_equal(rx__status_can_move(bad, (rx_job_status)s), 0);
            assert_int_equal(rx__status_can_move((rx_job_status)s, bad), 0);
        }
    }
}

static void
test_status_can_move_never_to_itself(void **state)
{
    (void)state;
    for (int s = 0; s < RX_JOB_STATUS_COUNT; s++)
        assert_int_equal(rx__status_can_move((rx_job_status)s, (rx_job_status)s), 0);
}

/* ------------------------------------------------------------------------------------------ */

struct name_case {
    rx_job_status status;
    const char *name;
};

static const struct name_case name_cases[] = {
    {RX_JOB_QUEUED, "QUEUED"}, {RX_JOB_RUNNING, "RUNNING"},   {RX_JOB_FINISHED, "FINISHED"},
    {RX_JOB_FAILED, "FAILED"}, {RX_JOB_CANCELED, "CANCELED"}, {RX_JOB_UNDETERMINED, "UNDETERMINED"},
};

static void
test_status_name_each(void **state)
{
    (void)state;
    /* The numbers are ABI: check them along with the names. */
    assert_int_equal(RX_JOB_QUEUED, 0);
    assert_int_equal(RX_JOB_RUNNING, 1);
    assert_int_equal(RX_JOB_FINISHED, 2);
    assert_int_equal(RX_JOB_FAILED, 3);
    assert_int_equal(RX_JOB_CANCELED, 4);
    assert_int_equal(RX_JOB_UNDETERMINED, 5);
    assert_int_equal(RX_JOB_STATUS_COUNT, 6);
    assert_int_equal(RX__ARRAY_LEN(name_cases), RX_JOB_STATUS_COUNT);

    for (size_t i = 0; i < RX__ARRAY_LEN(name_cases); i++)
        assert_string_equal(rx_job_status_name(name_cases[i].status), name_cases[i].name);
}

static void
test_status_name_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(bad_status_values); i++)
        assert_string_equal(rx_job_status_name((rx_job_status)bad_status_values[i]), "INVALID");
}

/* ------------------------------------------------------------------------------------------ */

struct parse_case {
    const char *name;
    rx_err want_err;
    rx_job_status want_status;
};

static const struct parse_case parse_cases[] = {
    {"QUEUED", RX_OK, RX_JOB_QUEUED},
    {"RUNNING", RX_OK, RX_JOB_RUNNING},
    {"FINISHED", RX_OK, RX_JOB_FINISHED},
    {"FAILED", RX_OK, RX_JOB_FAILED},
    {"CANCELED", RX_OK, RX_JOB_CANCELED},
    {"UNDETERMINED", RX_OK, RX_JOB_UNDETERMINED},
    {"queued", RX_OK, RX_JOB_QUEUED},
    {"finished", RX_OK, RX_JOB_FINISHED},
    {"Failed", RX_OK, RX_JOB_FAILED},
    {"cAnCeLeD", RX_OK, RX_JOB_CANCELED},
    {"undetermined", RX_OK, RX_JOB_UNDETERMINED},
    {"", RX_EINVAL, 0},
    {"INVALID", RX_EINVAL, 0},
    {"invalid", RX_EINVAL, 0},
    {"FINISH", RX_EINVAL, 0},
    {"FINISHEDX", RX_EINVAL, 0},
    {"FINISHED ", RX_EINVAL, 0},
    {" FINISHED", RX_EINVAL, 0},
    {"FINISHED\n", RX_EINVAL, 0},
    {"CANCELLED", RX_EINVAL, 0},
    {"RX_JOB_FINISHED", RX_EINVAL, 0},
    {"2", RX_EINVAL, 0},
    {"Q", RX_EINVAL, 0},
    {"QUEUED\0RUNNING", RX_OK, RX_JOB_QUEUED}, /* a C string ends at its NUL */
};

static void
test_status_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(parse_cases); i++) {
        const struct parse_case *tc = &parse_cases[i];
        /* A sentinel outside the enum shows whether the output was written. */
        rx_job_status got = (rx_job_status)99;
        rx_err err = rx_job_status_parse(tc->name, &got);

        if (err != tc->want_err)
            fail_msg("parse(\"%s\") = %s, want %s", tc->name, rx_errname(err),
                     rx_errname(tc->want_err));
        if (tc->want_err == RX_OK)
            assert_int_equal(got, tc->want_status);
        else
            assert_int_equal(got, 99); /* written only on success */
    }
}

static void
test_status_parse_round_trip(void **state)
{
    (void)state;
    for (int s = 0; s < RX_JOB_STATUS_COUNT; s++) {
        rx_job_status got = RX_JOB_STATUS_COUNT;

        assert_int_equal(rx_job_status_parse(rx_job_status_name((rx_job_status)s), &got), RX_OK);
        assert_int_equal(got, s);
    }
}

static void
test_status_parse_null(void **state)
{
    rx_job_status got = RX_JOB_RUNNING;

    (void)state;
    assert_int_equal(rx_job_status_parse(NULL, &got), RX_EINVAL);
    assert_int_equal(got, RX_JOB_RUNNING);
    assert_int_equal(rx_job_status_parse("QUEUED", NULL), RX_EINVAL);
}

/* ------------------------------------------------------------------------------------------ */

static void
test_status_is_terminal_each(void **state)
{
    static const int want[RX_JOB_STATUS_COUNT] = {
        [RX_JOB_QUEUED] = 0, [RX_JOB_RUNNING] = 0,  [RX_JOB_FINISHED] = 1,
        [RX_JOB_FAILED] = 1, [RX_JOB_CANCELED] = 1, [RX_JOB_UNDETERMINED] = 1,
    };

    (void)state;
    for (int s = 0; s < RX_JOB_STATUS_COUNT; s++)
        assert_int_equal(rx_job_status_is_terminal((rx_job_status)s), want[s]);
    for (size_t i = 0; i < RX__ARRAY_LEN(bad_status_values); i++)
        assert_int_equal(rx_job_status_is_terminal((rx_job_status)bad_status_values[i]), 0);
}

/* A terminal status can only move to cleanup (UNDETERMINED); a live one never to UNDETERMINED. */
static void
test_status_is_terminal_matches_moves(void **state)
{
    (void)state;
    for (int from = 0; from < RX_JOB_STATUS_COUNT; from++) {
        for (int to = 0; to < RX_JOB_STATUS_COUNT; to++) {
            if (!rx__status_can_move((rx_job_status)from, (rx_job_status)to))
                continue;
            if (rx_job_status_is_terminal((rx_job_status)from))
                assert_int_equal(to, RX_JOB_UNDETERMINED);
            else
                assert_int_not_equal(to, RX_JOB_UNDETERMINED);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */

struct task_state_case {
    int state;
    const char *name;
    int is_failure;
};

static const struct task_state_case task_state_cases[] = {
    {RX_TASK_OK, "OK", 0},
    {RX_TASK_ERROR, "ERROR", 1},
    {RX_TASK_EXIT, "EXIT", 1},
    {RX_TASK_SIGNALED, "SIGNALED", 1},
    {RX_TASK_TIMEOUT, "TIMEOUT", 1},
    {RX_TASK_START_FAILED, "START_FAILED", 1},
    {RX_TASK_LOST, "LOST", 1},
    {RX_TASK_NOT_RUN, "NOT_RUN", 1},
    {RX_TASK_STOPPED, "STOPPED", 1},
    {RX_TASK_STATE_COUNT, "INVALID", 1},
    {-1, "INVALID", 1},
    {100, "INVALID", 1},
};

static void
test_status_task_state_name_and_failure(void **state)
{
    (void)state;
    assert_int_equal(RX_TASK_STATE_COUNT, 9);
    for (size_t i = 0; i < RX__ARRAY_LEN(task_state_cases); i++) {
        const struct task_state_case *tc = &task_state_cases[i];

        assert_string_equal(rx_task_state_name((rx_task_state)tc->state), tc->name);
        assert_int_equal(rx__task_state_is_failure((rx_task_state)tc->state), tc->is_failure);
    }
}

/* ------------------------------------------------------------------------------------------ */

struct counts_case {
    const char *what;
    rx__task_counts counts;
    rx_job_status want;
};

#define COUNTS(t, p, r, o, f, c)                                                \
    {                                                                           \
        .total = (t), .pending = (p), .running = (r), .ok = (o), .failed = (f), \
        .cancel_requested = (c)                                                 \
    }

static const struct counts_case counts_cases[] = {
    /* total, pending, running, ok, failed, cancel_requested */
    {"no tasks at all", COUNTS(0, 0, 0, 0, 0, 0), RX_JOB_UNDETERMINED},
    {"no tasks, canceled", COUNTS(0, 0, 0, 0, 0, 1), RX_JOB_UNDETERMINED},
    {"one task, not started", COUNTS(1, 1, 0, 0, 0, 0), RX_JOB_QUEUED},
    {"five tasks, none started", COUNTS(5, 5, 0, 0, 0, 0), RX_JOB_QUEUED},
    {"one task running", COUNTS(1, 0, 1, 0, 0, 0), RX_JOB_RUNNING},
    {"some running, some pending", COUNTS(5, 3, 2, 0, 0, 0), RX_JOB_RUNNING},
    {"one ok, rest pending (between tasks)", COUNTS(3, 2, 0, 1, 0, 0), RX_JOB_RUNNING},
    {"one failed, rest pending", COUNTS(3, 2, 0, 0, 1, 0), RX_JOB_RUNNING},
    {"one failed, one still running", COUNTS(2, 0, 1, 0, 1, 0), RX_JOB_RUNNING},
    {"all ok but one running", COUNTS(4, 0, 1, 3, 0, 0), RX_JOB_RUNNING},
    {"all ok", COUNTS(1, 0, 0, 1, 0, 0), RX_JOB_FINISHED},
    {"all ok, many", COUNTS(1000, 0, 0, 1000, 0, 0), RX_JOB_FINISHED},
    {"one failed", COUNTS(1, 0, 0, 0, 1, 0), RX_JOB_FAILED},
    {"one of many failed", COUNTS(10, 0, 0, 9, 1, 0), RX_JOB_FAILED},
    {"all failed", COUNTS(3, 0, 0, 0, 3, 0), RX_JOB_FAILED},
    {"stopped on first failure (rest NOT_RUN)", COUNTS(5, 0, 0, 1, 4, 0), RX_JOB_FAILED},
    {"canceled before any start", COUNTS(3, 3, 0, 0, 0, 1), RX_JOB_CANCELED},
    {"canceled, tasks still being stopped", COUNTS(3, 1, 2, 0, 0, 1), RX_JOB_RUNNING},
    {"canceled, last task being stopped", COUNTS(3, 0, 1, 1, 1, 1), RX_JOB_RUNNING},
    {"canceled, all stopped", COUNTS(3, 0, 0, 0, 3, 1), RX_JOB_CANCELED},
    {"canceled, stopped, rest never started", COUNTS(4, 2, 0, 1, 1, 1), RX_JOB_CANCELED},
    {"canceled as the last task ended ok", COUNTS(2, 0, 0, 2, 0, 1), RX_JOB_CANCELED},
    {"counts add up to less than total", COUNTS(5, 1, 1, 1, 1, 0), RX_JOB_UNDETERMINED},
    {"counts add up to more than total", COUNTS(2, 1, 1, 1, 0, 0), RX_JOB_UNDETERMINED},
    {"one count above total", COUNTS(2, 0, 0, 3, 0, 0), RX_JOB_UNDETERMINED},
    {"counts that wrap around", COUNTS(2, SIZE_MAX, 3, 0, 0, 0), RX_JOB_UNDETERMINED},
};

static void
test_status_from_counts_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(counts_cases); i++) {
        const struct counts_case *tc = &counts_cases[i];
        rx_job_status got = rx__job_status_from_counts(&tc->counts);

        if (got != tc->want)
            fail_msg("%s: got %s, want %s", tc->what, rx_job_status_name(got),
                     rx_job_status_name(tc->want));
    }
}

static void
test_status_from_counts_null(void **state)
{
    (void)state;
    assert_int_equal(rx__job_status_from_counts(NULL), RX_JOB_UNDETERMINED);
}

/*
 * Every step a task or the job can take, applied to every reachable state of jobs of 1 to 4
 * tasks: the derived status either stays the same or makes a legal move. Steps: a task starts
 * (not after cancel: queued tasks never start), a task fails to start or is marked NOT_RUN, a
 * running task ends ok or failed, cancel is accepted (only while QUEUED or RUNNING).
 */
static int
step(rx__task_counts *c, int kind)
{
    rx_job_status now = rx__job_status_from_counts(c);

    switch (kind) {
    case 0: /* start */
        if (c->pending == 0 || c->cancel_requested)
            return 0;
        c->pending--;
        c->running++;
        return 1;
    case 1: /* START_FAILED or NOT_RUN */
        if (c->pending == 0)
            return 0;
        c->pending--;
        c->failed++;
        return 1;
    case 2: /* ends ok */
        if (c->running == 0)
            return 0;
        c->running--;
        c->ok++;
        return 1;
    case 3: /* fails, or is stopped */
        if (c->running == 0)
            return 0;
        c->running--;
        c->failed++;
        return 1;
    case 4: /* rx_cancel_job accepted */
        if (c->cancel_requested || rx_job_status_is_terminal(now))
            return 0;
        c->cancel_requested = 1;
        return 1;
    default:
        return 0;
    }
}

static void
test_status_from_counts_moves_are_legal(void **state)
{
    size_t n_checked = 0;

    (void)state;
    for (size_t total = 1; total <= 4; total++) {
        for (size_t p = 0; p <= total; p++) {
            for (size_t r = 0; p + r <= total; r++) {
                for (size_t o = 0; p + r + o <= total; o++) {
                    for (int cancel = 0; cancel <= 1; cancel++) {
                        rx__task_counts before = COUNTS(total, p, r, o, total - p - r - o, cancel);
                        rx_job_status from = rx__job_status_from_counts(&before);

                        assert_int_not_equal(from, RX_JOB_UNDETERMINED);
                        for (int kind = 0; kind <= 4; kind++) {
                            rx__task_counts after = before;
                            rx_job_status to;

                            if (!step(&after, kind))
                                continue;
                            to = rx__job_status_from_counts(&after);
                            if (to != from && !rx__status_can_move(from, to))
                                fail_msg("step %d from {%zu,%zu,%zu,%zu,%zu,%d}: %s -> %s", kind,
                                         total, p, r, o, total - p - r - o, cancel,
                                         rx_job_status_name(from), rx_job_status_name(to));
                            n_checked++;
                        }
                    }
                }
            }
        }
    }
    assert_true(n_checked > 100);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_can_move_every_pair),
        cmocka_unit_test(test_status_can_move_out_of_range),
        cmocka_unit_test(test_status_can_move_never_to_itself),
        cmocka_unit_test(test_status_name_each),
        cmocka_unit_test(test_status_name_invalid),
        cmocka_unit_test(test_status_parse_table),
        cmocka_unit_test(test_status_parse_round_trip),
        cmocka_unit_test(test_status_parse_null),
        cmocka_unit_test(test_status_is_terminal_each),
        cmocka_unit_test(test_status_is_terminal_matches_moves),
        cmocka_unit_test(test_status_task_state_name_and_failure),
        cmocka_unit_test(test_status_from_counts_table),
        cmocka_unit_test(test_status_from_counts_null),
        cmocka_unit_test(test_status_from_counts_moves_are_legal),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
