/*
 * tour.c - the API tour of README.md, compiled so that it stays true: a parallel map of a
 * function over three words, one of which makes its task fail.
 */
#include "rxjob.h"

#include <stdio.h>

/* A task: read the argument, set a result, or fail with a message. */
static int
word_length(rx_task *task)
{
    size_t len;
    const char *word = rx_task_arg(task, &len);

    if (len == 0)
        return rx_task_fail(task, "empty word at index %zu", rx_task_index(task));
    printf("measuring '%s'\n", word); /* captured as the task's console output */
    char buf[32];
    snprintf(buf, sizeof(buf), "%zu", len);
    return rx_task_set_result_str(task, buf) == RX_OK ? 0 : -1;
}

int
main(void)
{
    rx_context *ctx;
    rx_results *res;
    rx_buf words[] = {{"alpha", 5}, {"", 0}, {"gamma", 5}};
    rx_work work = rx_work_function(word_length);
    rx_exec_opts opts = RX_EXEC_OPTS_INIT;

    rx_local_parallel_context(0, &ctx); /* 0 = one worker per online CPU */
    opts.elem_args = words;             /* one task per element */
    opts.n_elem_args = 3;
    opts.execution_timeout_s = 10;                       /* per task, as Slurm's --time */
    rx_err err = rx_exec(ctx, &work, &opts, &res, NULL); /* local contexts always wait */
    if (err != RX_OK && err != RX_EJOBFAILED) { /* EJOBFAILED: a task failed, results still here */
        fprintf(stderr, "tour: %s: %s\n", rx_strerror(err), rx_context_errmsg(ctx));
        return 1;
    }
    for (size_t i = 0; i < rx_results_count(res); i++) {
        if (rx_results_state(res, i) == RX_TASK_OK)
            printf("%zu: %s\n", i, (const char *)rx_results_value(res, i, NULL));
        else
            printf("%zu: error: %s\n", i, rx_results_error(res, i));
    }
    rx_results_write_all_output(res, stdout); /* "==> task N <==" then its output */
    rx_job_status st = rx_results_status(res);
    printf("job %s\n", rx_job_status_name(st)); /* FAILED: slot 1 failed */
    rx_results_free(res);
    rx_context_free(ctx);
    return st == RX_JOB_FINISHED ? 0 : 1; /* a failed job fails the program, as in a shell */
}
