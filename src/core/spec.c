/*
 * spec.c - checking a job before it exists: the run-count rules and rx_exec's option checks
 * (DESIGN.md section 2), as pure functions.
 *
 * rx_exec calls these first, so a bad submission is refused with RX_EINVAL or RX_ECOUNT before
 * any task runs or any job is recorded. Each refusal comes with a short reason for the context's
 * error message, naming the field and the value that were wrong, for example
 * "times_to_run is 5 but elem_args has 3 elements".
 *
 * Only what does not depend on the context is checked here; the context supplies the one
 * context-dependent input, the default task count (1 locally, num_tasks on a server).
 */
#include "core/spec.h"

#include "core/internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Write a reason to why (when the caller wants one) and return err, so a check can end with
 * `return fail(why, why_len, RX_EINVAL, "...")`. */
static rx_err fail(char *why, size_t why_len, rx_err err, const char *fmt, ...) RX_PRINTF(4, 5);

static rx_err
fail(char *why, size_t why_len, rx_err err, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || why_len == 0)
        return err;

    va_start(ap, fmt);
    if (vsnprintf(why, why_len, fmt, ap) < 0)
        why[0] = '\0';
    va_end(ap);
    return err;
}

rx_err
rx__task_count(int64_t times_to_run, int has_elem_args, size_t n_elem_args, size_t default_count,
               size_t *out_count, char *why, size_t why_len)
{
    size_t count;

    if (out_count == NULL)
        return fail(why, why_len, RX_EINVAL, "no place for the task count");

    /* times_to_run is checked on its own first: 0 or < -1 is wrong whatever elem_args says. */
    if (times_to_run == 0)
        return fail(why, why_len, RX_EINVAL, "times_to_run is 0: a job needs at least one task");
    if (times_to_run < -1)
        return fail(why, why_len, RX_EINVAL,
                    "times_to_run is %" PRId64 ": it must be -1 (derive it) or at least 1",
                    times_to_run);
    if (times_to_run > RX_MAX_TASKS)
        return fail(why, why_len, RX_EINVAL,
                    "times_to_run is %" PRId64 ", more than the limit of %" PRId64 " tasks",
                    times_to_run, RX_MAX_TASKS);

    if (has_elem_args) {
        if (n_elem_args == 0)
            return fail(why, why_len, RX_EINVAL,
                        "elem_args has no elements: a job needs at least one task");
        if (n_elem_args > (uint64_t)RX_MAX_TASKS)
            return fail(why, why_len, RX_EINVAL,
                        "elem_args has %zu elements, more than the limit of %" PRId64 " tasks",
                        n_elem_args, RX_MAX_TASKS);
        if (times_to_run != -1 && (uint64_t)times_to_run != n_elem_args)
            return fail(why, why_len, RX_ECOUNT,
                        "times_to_run is %" PRId64 " but elem_args has %zu elements", times_to_run,
                        n_elem_args);
        count = n_elem_args;
    } else if (times_to_run == -1) {
        if (default_count == 0)
            return fail(why, why_len, RX_EINVAL,
                        "the default task count is 0: set times_to_run or elem_args");
        if (default_count > (uint64_t)RX_MAX_TASKS)
            return fail(why, why_len, RX_EINVAL,
                        "the default task count is %zu, more than the limit of %" PRId64 " tasks",
                        default_count, RX_MAX_TASKS);
        count = default_count;
    } else {
        count = (size_t)times_to_run;
    }

    *out_count = count;
    return RX_OK;
}

/* 1 if a tristate field holds one of its three values. */
static int
tristate_is_valid(rx_tristate t)
{
    return t == RX_INHERIT || t == RX_FALSE || t == RX_TRUE;
}

/* Length of an environment entry's name ("NAME=value"), or 0 when it has no '='. */
static size_t
env_name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');

    return eq == NULL ? 0 : (size_t)(eq - entry);
}

/* Each entry "NAME=value" with a non-empty NAME, none of rxjob's own RXJOB_* (the task's
 * result path and index must be ours), and each NAME once. */
static rx_err
check_env(const char *const *env, char *why, size_t why_len)
{
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        size_t n = env_name_len(env[i]);

        if (n == 0)
            return fail(why, why_len, RX_EINVAL, "env[%zu] '%.64s' is not NAME=value", i, env[i]);
        if (strncmp(env[i], "RXJOB_", 6) == 0)
            return fail(why, why_len, RX_EINVAL,
                        "env[%zu] sets %.*s: RXJOB_* names are set by rxjob for each task", i,
                        (int)n, env[i]);
        for (size_t k = 0; k < i; k++) {
            if (env_name_len(env[k]) == n && strncmp(env[k], env[i], n) == 0)
                return fail(why, why_len, RX_EINVAL, "env sets %.*s twice (env[%zu], env[%zu])",
                            (int)n, env[i], k, i);
        }
    }
    return RX_OK;
}

static rx_err
check_work(const rx_work *work, char *why, size_t why_len)
{
    if (work == NULL)
        return fail(why, why_len, RX_EINVAL, "work is NULL");

    switch (work->kind) {
    case RX_WORK_FUNCTION:
        if (work->function == NULL)
            return fail(why, why_len, RX_EINVAL, "function work has no function (it is NULL)");
        return RX_OK;
    case RX_WORK_COMMAND:
        if (work->argv == NULL)
            return fail(why, why_len, RX_EINVAL, "command work has no argv (it is NULL)");
        if (work->argv[0] == NULL)
            return fail(why, why_len, RX_EINVAL, "command work has an empty argv");
        if (work->argv[0][0] == '\0')
            return fail(why, why_len, RX_EINVAL, "command work has an empty program name");
        if (work->stdin_data == NULL && work->stdin_len > 0)
            return fail(why, why_len, RX_EINVAL, "stdin_data is NULL but stdin_len is %zu",
                        work->stdin_len);
        return check_env(work->env, why, why_len);
    }
    return fail(why, why_len, RX_EINVAL, "work kind %d is neither function (%d) nor command (%d)",
                (int)work->kind, (int)RX_WORK_FUNCTION, (int)RX_WORK_COMMAND);
}

static rx_err
check_elem_args(const rx_work *work, const rx_exec_opts *opts, char *why, size_t why_len)
{
    int needs_text;

    if (opts->elem_args == NULL) {
        if (opts->n_elem_args > 0)
            return fail(why, why_len, RX_EINVAL, "elem_args is NULL but n_elem_args is %zu",
                        opts->n_elem_args);
        return RX_OK;
    }

    /* A NUL byte cannot reach a command's argv, where "{}" puts the argument (or where it is
     * appended, when no element has "{}"). */
    needs_text = work->kind == RX_WORK_COMMAND;

    for (size_t i = 0; i < opts->n_elem_args; i++) {
        const rx_buf *arg = &opts->elem_args[i];

        if (arg->data == NULL && arg->len > 0)
            return fail(why, why_len, RX_EINVAL, "elem_args[%zu] has no data but a length of %zu",
                        i, arg->len);
        if (needs_text && arg->len > 0 && memchr(arg->data, '\0', arg->len) != NULL)
            return fail(why, why_len, RX_EINVAL,
                        "elem_args[%zu] holds a NUL byte, which cannot be put in a command's argv",
                        i);
    }
    return RX_OK;
}

rx_err
rx__exec_check(const rx_work *work, const rx_exec_opts *opts, char *why, size_t why_len)
{
    size_t count;
    rx_err err;

    if (opts == NULL)
        return fail(why, why_len, RX_EINVAL, "opts is NULL");

    /* First, so no field past the caller's struct is read. */
    if (opts->struct_size < RX__EXEC_OPTS_MIN_SIZE)
        return fail(why, why_len, RX_EINVAL,
                    "opts.struct_size is %zu, less than %zu: start from RX_EXEC_OPTS_INIT",
                    opts->struct_size, (size_t)RX__EXEC_OPTS_MIN_SIZE);

    err = check_work(work, why, why_len);
    if (err != RX_OK)
        return err;

    if (!tristate_is_valid(opts->continue_on_failure))
        return fail(why, why_len, RX_EINVAL,
                    "continue_on_failure is %d, not RX_INHERIT, RX_FALSE or RX_TRUE",
                    (int)opts->continue_on_failure);
    if (!tristate_is_valid(opts->console_output))
        return fail(why, why_len, RX_EINVAL,
                    "console_output is %d, not RX_INHERIT, RX_FALSE or RX_TRUE",
                    (int)opts->console_output);

    if (!isfinite(opts->execution_timeout_s))
        return fail(why, why_len, RX_EINVAL, "execution_timeout_s is %g, not a finite number",
                    opts->execution_timeout_s);
    if (opts->execution_timeout_s < 0)
        return fail(why, why_len, RX_EINVAL, "execution_timeout_s is %g: it must be >= 0",
                    opts->execution_timeout_s);
    if (opts->execution_timeout_s > RX_MAX_TIMEOUT_S)
        return fail(why, why_len, RX_EINVAL,
                    "execution_timeout_s is %g, more than the limit of %g s",
                    opts->execution_timeout_s, RX_MAX_TIMEOUT_S);

    err = check_elem_args(work, opts, why, why_len);
    if (err != RX_OK)
        return err;

    /* The run-count rules without the context: any positive default shows the same errors. */
    return rx__task_count(opts->times_to_run, opts->elem_args != NULL, opts->n_elem_args, 1, &count,
                          why, why_len);
}
