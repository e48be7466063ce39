/*
 * test_spec.c - checking a job before it exists (src/core/spec.c): the run-count rules of
 * DESIGN.md section 2, every error they give, and rx__exec_check's checks of work and options.
 */
#include "core/internal.h"
#include "core/spec.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* cmocka.h needs the declarations of the headers above. */
#include <cmocka.h>

#define WHY_LEN 256

/* ------------------------------------------------------------------------------------------ */

struct count_case {
    int64_t times_to_run;
    int has_elem_args;
    size_t n_elem_args;
    size_t default_count;
    rx_err want_err;
    size_t want_count;
    const char *want_why; /* a substring of the reason, for failures */
};

static const struct count_case count_cases[] = {
    /* Neither: the context's default (1 local, num_tasks on a server). */
    {-1, 0, 0, 1, RX_OK, 1, NULL},
    {-1, 0, 0, 8, RX_OK, 8, NULL},
    {-1, 0, 0, (size_t)RX_MAX_TASKS, RX_OK, (size_t)RX_MAX_TASKS, NULL},
    {-1, 0, 0, 0, RX_EINVAL, 0, "default task count is 0"},
    {-1, 0, 0, (size_t)RX_MAX_TASKS + 1, RX_EINVAL, 0, "more than the limit"},
    /* times_to_run alone. */
    {1, 0, 0, 1, RX_OK, 1, NULL},
    {5, 0, 0, 1, RX_OK, 5, NULL},
    {5, 0, 0, 8, RX_OK, 5, NULL}, /* the default does not matter */
    {5, 0, 0, 0, RX_OK, 5, NULL},
    {RX_MAX_TASKS, 0, 0, 1, RX_OK, (size_t)RX_MAX_TASKS, NULL},
    {RX_MAX_TASKS + 1, 0, 0, 1, RX_EINVAL, 0, "times_to_run is 10000001, more than the limit"},
    {INT64_MAX, 0, 0, 1, RX_EINVAL, 0, "more than the limit"},
    {0, 0, 0, 1, RX_EINVAL, 0, "times_to_run is 0"},
    {-2, 0, 0, 1, RX_EINVAL, 0, "times_to_run is -2"},
    {INT64_MIN, 0, 0, 1, RX_EINVAL, 0, "times_to_run is -9223372036854775808"},
    {5, 0, 3, 1, RX_OK, 5, NULL}, /* without elem_args, n_elem_args is not looked at */
    /* elem_args fix the count. */
    {-1, 1, 3, 1, RX_OK, 3, NULL},
    {-1, 1, 3, 8, RX_OK, 3, NULL},
    {-1, 1, 1, 1, RX_OK, 1, NULL},
    {3, 1, 3, 1, RX_OK, 3, NULL},
    {-1, 1, (size_t)RX_MAX_TASKS, 1, RX_OK, (size_t)RX_MAX_TASKS, NULL},
    {5, 1, 3, 1, RX_ECOUNT, 0, "times_to_run is 5 but elem_args has 3 elements"},
    {2, 1, 3, 1, RX_ECOUNT, 0, "times_to_run is 2 but elem_args has 3 elements"},
    {1, 1, 2, 1, RX_ECOUNT, 0, "times_to_run is 1 but elem_args has 2 elements"},
    {-1, 1, 0, 1, RX_EINVAL, 0, "elem_args has no elements"},
    {3, 1, 0, 1, RX_EINVAL, 0, "elem_args has no elements"},
    {0, 1, 3, 1, RX_EINVAL, 0, "times_to_run is 0"},
    {-2, 1, 3, 1, RX_EINVAL, 0, "times_to_run is -2"},
    {RX_MAX_TASKS + 1, 1, 3, 1, RX_EINVAL, 0, "more than the limit"},
    {-1, 1, (size_t)RX_MAX_TASKS + 1, 1, RX_EINVAL, 0, "elem_args has 10000001 elements"},
    {-1, 1, SIZE_MAX, 1, RX_EINVAL, 0, "more than the limit"},
};

static void
test_spec_task_count_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(count_cases); i++) {
        const struct count_case *tc = &count_cases[i];
        size_t count = 12345;
        char why[WHY_LEN] = "";
        rx_err err = rx__task_count(tc->times_to_run, tc->has_elem_args, tc->n_elem_args,
                                    tc->default_count, &count, why, sizeof(why));

        if (err != tc->want_err)
            fail_msg("case %zu (times_to_run %lld, elem %d/%zu): got %s (%s), want %s", i,
                     (long long)tc->times_to_run, tc->has_elem_args, tc->n_elem_args,
                     rx_errname(err), why, rx_errname(tc->want_err));
        if (tc->want_err == RX_OK) {
            assert_int_equal(count, tc->want_count);
        } else {
            assert_int_equal(count, 12345); /* written only on success */
            if (strstr(why, tc->want_why) == NULL)
                fail_msg("case %zu: reason \"%s\" lacks \"%s\"", i, why, tc->want_why);
        }
    }
}

static void
test_spec_task_count_why_optional(void **state)
{
    size_t count = 0;
    char why[8];

    (void)state;
    /* No buffer, or a zero-length one: the error alone, nothing written. */
    assert_int_equal(rx__task_count(5, 1, 3, 1, &count, NULL, 0), RX_ECOUNT);
    assert_int_equal(rx__task_count(5, 1, 3, 1, &count, NULL, 100), RX_ECOUNT);
    memset(why, 'x', sizeof(why));
    assert_int_equal(rx__task_count(5, 1, 3, 1, &count, why, 0), RX_ECOUNT);
    assert_int_equal(why[0], 'x');

    /* A short buffer: the reason is cut, and still NUL-terminated. */
    assert_int_equal(rx__task_count(5, 1, 3, 1, &count, why, sizeof(why)), RX_ECOUNT);
    assert_string_equal(why, "times_t");

    /* On success the reason is left alone. */
    memset(why, 'x', sizeof(why));
    assert_int_equal(rx__task_count(-1, 1, 3, 1, &count, why, sizeof(why)), RX_OK);
    assert_int_equal(why[0], 'x');
    assert_int_equal(count, 3);
}

static void
test_spec_task_count_null_out(void **state)
{
    (void)state;
    assert_int_equal(rx__task_count(1, 0, 0, 1, NULL, NULL, 0), RX_EINVAL);
}

/* ------------------------------------------------------------------------------------------ */

static int
noop_function(rx_task *task)
{
    (void)task;
    return 0;
}

static const char *const argv_echo[] = {"echo", "hello", NULL};
static const char *const argv_echo_arg[] = {"echo", "{}", NULL};
static const char *const argv_echo_embedded[] = {"echo", "--name={}.txt", NULL};
static const char *const argv_braces_apart[] = {"echo", "{", "}", "{ }", NULL};
static const char *const argv_empty[] = {NULL};
static const char *const argv_empty_program[] = {"", "x", NULL};

static const rx_buf args_text[] = {{"a", 1}, {"bc", 2}, {"", 0}};
static const rx_buf args_nul[] = {{"a", 1}, {"b\0c", 3}};
static const rx_buf args_null_empty[] = {{NULL, 0}, {"x", 1}};
static const rx_buf args_null_data[] = {{"x", 1}, {NULL, 4}};

#define FUNCTION_WORK                                       \
    {                                                       \
        .kind = RX_WORK_FUNCTION, .function = noop_function \
    }
#define COMMAND_WORK(av)                      \
    {                                         \
        .kind = RX_WORK_COMMAND, .argv = (av) \
    }
/* Fields not named are zero: RX_INHERIT, no elem_args, no time limit. Two macros, because
 * designating a field twice trips -Woverride-init. */
#define OPTS_WITH(size, ttr, ...)                                 \
    {                                                             \
        .struct_size = (size), .times_to_run = (ttr), __VA_ARGS__ \
    }
#define OPTS(...) OPTS_WITH(sizeof(rx_exec_opts), -1, __VA_ARGS__)

struct check_case {
    const char *what;
    int work_is_null;
    rx_work work;
    rx_exec_opts opts;
    rx_err want_err;
    const char *want_why; /* a substring of the reason, for failures */
};

static const struct check_case check_cases[] = {
    /* Valid work and options. */
    {"function, defaults", 0, FUNCTION_WORK, OPTS(), RX_OK, NULL},
    {"command, defaults", 0, COMMAND_WORK(argv_echo), OPTS(), RX_OK, NULL},
    {"function with a name",
     0,
     {.kind = RX_WORK_FUNCTION, .function = noop_function, .name = "f"},
     OPTS(),
     RX_OK,
     NULL},
    {"command with every option",
     0,
     {.kind = RX_WORK_COMMAND,
      .argv = argv_echo_arg,
      .cwd = "/",
      .stdin_data = "in",
      .stdin_len = 2},
     OPTS_WITH(sizeof(rx_exec_opts), 3, .elem_args = args_text, .n_elem_args = 3, .num_tasks = 2,
               .task_chunk_size = 5, .continue_on_failure = RX_FALSE, .execution_timeout_s = 1.5,
               .console_output = RX_TRUE),
     RX_OK,
     NULL},
    {"larger struct_size (a newer caller)", 0, FUNCTION_WORK,
     OPTS_WITH(sizeof(rx_exec_opts) + 16, -1, ), RX_OK, NULL},

    /* Work. */
    {"NULL work", 1, FUNCTION_WORK, OPTS(), RX_EINVAL, "work is NULL"},
    {"kind 0", 0, {.kind = 0, .function = noop_function}, OPTS(), RX_EINVAL, "work kind 0"},
    {"kind 3", 0, {.kind = 3, .argv = argv_echo}, OPTS(), RX_EINVAL, "work kind 3"},
    {"kind -1", 0, {.kind = -1}, OPTS(), RX_EINVAL, "work kind -1"},
    {"NULL function", 0, {.kind = RX_WORK_FUNCTION}, OPTS(), RX_EINVAL, "no function"},
    {"function kind ignores a NULL argv", 0, FUNCTION_WORK, OPTS(), RX_OK, NULL},
    {"NULL argv", 0, COMMAND_WORK(NULL), OPTS(), RX_EINVAL, "no argv"},
    {"empty argv", 0, COMMAND_WORK(argv_empty), OPTS(), RX_EINVAL, "empty argv"},
    {"empty program name", 0, COMMAND_WORK(argv_empty_program), OPTS(), RX_EINVAL,
     "empty program name"},
    {"command with a function but no argv",
     0,
     {.kind = RX_WORK_COMMAND, .function = noop_function},
     OPTS(),
     RX_EINVAL,
     "no argv"},
    {"NULL stdin_data with a length",
     0,
     {.kind = RX_WORK_COMMAND, .argv = argv_echo, .stdin_len = 1},
     OPTS(),
     RX_EINVAL,
     "stdin_data is NULL"},

    /* struct_size. */
    {"struct_size 0", 0, FUNCTION_WORK, OPTS_WITH(0, -1, ), RX_EINVAL, "struct_size is 0"},
    {"struct_size one short", 0, FUNCTION_WORK, OPTS_WITH(sizeof(rx_exec_opts) - 1, -1, ),
     RX_EINVAL, "struct_size"},
    {"struct_size of an int64", 0, FUNCTION_WORK, OPTS_WITH(sizeof(int64_t), -1, ), RX_EINVAL,
     "struct_size"},

    /* Tristates. */
    {"continue_on_failure true", 0, FUNCTION_WORK, OPTS(.continue_on_failure = RX_TRUE), RX_OK,
     NULL},
    {"continue_on_failure false", 0, FUNCTION_WORK, OPTS(.continue_on_failure = RX_FALSE), RX_OK,
     NULL},
    {"continue_on_failure 3", 0, FUNCTION_WORK, OPTS(.continue_on_failure = 3), RX_EINVAL,
     "continue_on_failure is 3"},
    {"continue_on_failure -1", 0, FUNCTION_WORK, OPTS(.continue_on_failure = -1), RX_EINVAL,
     "continue_on_failure is -1"},
    {"console_output true", 0, FUNCTION_WORK, OPTS(.console_output = RX_TRUE), RX_OK, NULL},
    {"console_output false", 0, FUNCTION_WORK, OPTS(.console_output = RX_FALSE), RX_OK, NULL},
    {"console_output 3", 0, FUNCTION_WORK, OPTS(.console_output = 3), RX_EINVAL,
     "console_output is 3"},
    {"console_output 1000", 0, FUNCTION_WORK, OPTS(.console_output = 1000), RX_EINVAL,
     "console_output is 1000"},

    /* Time limit. */
    {"timeout 0 (none)", 0, FUNCTION_WORK, OPTS(.execution_timeout_s = 0.0), RX_OK, NULL},
    {"timeout -0.0", 0, FUNCTION_WORK, OPTS(.execution_timeout_s = -0.0), RX_OK, NULL},
    {"timeout 1 ms", 0, FUNCTION_WORK, OPTS(.execution_timeout_s = 0.001), RX_OK, NULL},
    {"timeout at the limit", 0, FUNCTION_WORK, OPTS(.execution_timeout_s = RX_MAX_TIMEOUT_S), RX_OK,
     NULL},
    {"timeout -1", 0, FUNCTION_WORK, OPTS(.execution_timeout_s = -1.0), RX_EINVAL, ">= 0"},
    {"timeout slightly negative", 0, FUNCTION_WORK, OPTS(.execution_timeout_s = -1e-9), RX_EINVAL,
     ">= 0"},
    {"timeout NaN", 0, FUNCTION_WORK, OPTS(.execution_timeout_s = NAN), RX_EINVAL, "not a finite"},
    {"timeout -NaN", 0, FUNCTION_WORK, OPTS(.execution_timeout_s = -NAN), RX_EINVAL,
     "not a finite"},
    {"timeout +inf", 0, FUNCTION_WORK, OPTS(.execution_timeout_s = INFINITY), RX_EINVAL,
     "not a finite"},
    {"timeout -inf", 0, FUNCTION_WORK, OPTS(.execution_timeout_s = -INFINITY), RX_EINVAL,
     "not a finite"},
    {"timeout over the limit", 0, FUNCTION_WORK,
     OPTS(.execution_timeout_s = RX_MAX_TIMEOUT_S + 1.0), RX_EINVAL, "more than the limit"},
    {"timeout huge", 0, FUNCTION_WORK, OPTS(.execution_timeout_s = 1e300), RX_EINVAL,
     "more than the limit"},

    /* elem_args and "{}". */
    {"NUL byte with \"{}\"", 0, COMMAND_WORK(argv_echo_arg),
     OPTS(.elem_args = args_nul, .n_elem_args = 2), RX_EINVAL, "elem_args[1] holds a NUL byte"},
    {"NUL byte with \"{}\" inside an element", 0, COMMAND_WORK(argv_echo_embedded),
     OPTS(.elem_args = args_nul, .n_elem_args = 2), RX_EINVAL, "NUL byte"},
    /* Without "{}" the argument is appended to argv (GNU parallel), so it must be text too. */
    {"NUL byte, command without \"{}\"", 0, COMMAND_WORK(argv_echo),
     OPTS(.elem_args = args_nul, .n_elem_args = 2), RX_EINVAL, "NUL byte"},
    {"NUL byte, \"{\" and \"}\" apart", 0, COMMAND_WORK(argv_braces_apart),
     OPTS(.elem_args = args_nul, .n_elem_args = 2), RX_EINVAL, "NUL byte"},
    {"NUL byte, function work", 0, FUNCTION_WORK, OPTS(.elem_args = args_nul, .n_elem_args = 2),
     RX_OK, NULL},
    {"text args with \"{}\"", 0, COMMAND_WORK(argv_echo_arg),
     OPTS(.elem_args = args_text, .n_elem_args = 3), RX_OK, NULL},
    {"NUL byte past n_elem_args is not looked at", 0, COMMAND_WORK(argv_echo_arg),
     OPTS(.elem_args = args_nul, .n_elem_args = 1), RX_OK, NULL},
    {"NULL data, length 0", 0, COMMAND_WORK(argv_echo_arg),
     OPTS(.elem_args = args_null_empty, .n_elem_args = 2), RX_OK, NULL},
    {"NULL data, length 4", 0, FUNCTION_WORK, OPTS(.elem_args = args_null_data, .n_elem_args = 2),
     RX_EINVAL, "elem_args[1] has no data"},
    {"NULL elem_args with a count", 0, FUNCTION_WORK, OPTS(.n_elem_args = 3), RX_EINVAL,
     "elem_args is NULL but n_elem_args is 3"},

    /* Run counts (the rules themselves are in test_spec_task_count_table). */
    {"times_to_run 4", 0, FUNCTION_WORK, OPTS_WITH(sizeof(rx_exec_opts), 4, ), RX_OK, NULL},
    {"times_to_run 0", 0, FUNCTION_WORK, OPTS_WITH(sizeof(rx_exec_opts), 0, ), RX_EINVAL,
     "times_to_run is 0"},
    {"times_to_run -2", 0, FUNCTION_WORK, OPTS_WITH(sizeof(rx_exec_opts), -2, ), RX_EINVAL,
     "times_to_run is -2"},
    {"times_to_run over the limit", 0, FUNCTION_WORK,
     OPTS_WITH(sizeof(rx_exec_opts), RX_MAX_TASKS + 1, ), RX_EINVAL, "more than the limit"},
    {"times_to_run disagrees with elem_args", 0, FUNCTION_WORK,
     OPTS_WITH(sizeof(rx_exec_opts), 5, .elem_args = args_text, .n_elem_args = 3), RX_ECOUNT,
     "times_to_run is 5 but elem_args has 3 elements"},
    {"elem_args with no elements", 0, FUNCTION_WORK, OPTS(.elem_args = args_text), RX_EINVAL,
     "elem_args has no elements"},
};

static void
test_spec_exec_check_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(check_cases); i++) {
        const struct check_case *tc = &check_cases[i];
        char why[WHY_LEN] = "";
        rx_err err =
            rx__exec_check(tc->work_is_null ? NULL : &tc->work, &tc->opts, why, sizeof(why));

        if (err != tc->want_err)
            fail_msg("%s: got %s (\"%s\"), want %s", tc->what, rx_errname(err), why,
                     rx_errname(tc->want_err));
        if (tc->want_err != RX_OK && strstr(why, tc->want_why) == NULL)
            fail_msg("%s: reason \"%s\" lacks \"%s\"", tc->what, why, tc->want_why);
    }
}

static void
test_spec_exec_check_defaults(void **state)
{
    rx_exec_opts opts = RX_EXEC_OPTS_INIT;
    rx_work work = FUNCTION_WORK;

    (void)state;
    /* RX_EXEC_OPTS_INIT itself passes, with or without a reason buffer. */
    assert_int_equal(rx__exec_check(&work, &opts, NULL, 0), RX_OK);
    assert_int_equal(opts.struct_size, RX__EXEC_OPTS_MIN_SIZE);
}

static void
test_spec_exec_check_null_opts(void **state)
{
    rx_work work = FUNCTION_WORK;
    char why[WHY_LEN] = "";

    (void)state;
    assert_int_equal(rx__exec_check(&work, NULL, why, sizeof(why)), RX_EINVAL);
    assert_string_equal(why, "opts is NULL");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_task_count_table),
        cmocka_unit_test(test_spec_task_count_why_optional),
        cmocka_unit_test(test_spec_task_count_null_out),
        cmocka_unit_test(test_spec_exec_check_table),
        cmocka_unit_test(test_spec_exec_check_defaults),
        cmocka_unit_test(test_spec_exec_check_null_opts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
