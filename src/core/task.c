/*
 * task.c - the rx_task API a C function uses: its argument, index, result and failure text.
 */
#include "core/task.h"

#include "core/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define TASK_ERROR_MAX_BYTES 4096

const void *
rx_task_arg(const rx_task *task, size_t *out_len)
{
    if (task == NULL) {
        if (out_len != NULL)
            *out_len = 0;
        return "";
    }
    if (out_len != NULL)
        *out_len = task->arg_len;
    return task->arg ? task->arg : "";
}

size_t
rx_task_index(const rx_task *task)
{
    return task ? task->index : 0;
}

rx_err
rx_task_set_result(rx_task *task, const void *data, size_t len)
{
    void *copy;

    if (task == NULL || (data == NULL && len > 0))
        return RX_EINVAL;
    if (len > RX_RESULT_MAX_BYTES)
        return RX_ETOOBIG;
    copy = rx__memdup(data ? data : "", len);
    if (copy == NULL)
        return RX_ENOMEM;
    rx__free(task->value);
    task->value = copy;
    task->value_len = len;
    return RX_OK;
}

rx_err
rx_task_set_result_str(rx_task *task, const char *str)
{
    if (str == NULL)
        return RX_EINVAL;
    return rx_task_set_result(task, str, strlen(str));
}

int
rx_task_fail(rx_task *task, const char *fmt, ...)
{
    char buf[TASK_ERROR_MAX_BYTES];
    va_list ap;
    char *copy;

    if (task == NULL || fmt == NULL)
        return -1;
    va_start(ap, fmt);
    (void)vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    copy = rx__strdup(buf);
    if (copy != NULL) { /* out of memory: the task still fails, with a generic message */
        rx__free(task->error);
        task->error = copy;
    }
    return -1;
}

void
rx__task_reset(rx_task *task)
{
    rx__free(task->value);
    rx__free(task->error);
    task->value = NULL;
    task->value_len = 0;
    task->error = NULL;
}
