/*
 * log.c - the library's only way to say something: a sink the application installs.
 *
 * The library never prints. Messages go to the function installed with rx_set_log (none by
 * default, so nothing is even formatted), one line at a time, shaped as STYLE.md section 7 says:
 * "component: what failed: why". A message is cut to fit a 1 024-byte buffer, which is plenty
 * for one line and keeps logging free of allocation, so it works when memory has run out.
 *
 * The sink and its user pointer are plain statics: rxjob.h says to install the sink once, at
 * start, before other library calls run.
 */
#include "core/internal.h"

#include <stdio.h>
#include <string.h>

/* Bytes of one formatted message, including its NUL. */
#define LOG_MSG_MAX 1024

static rx_log_fn *log_fn = NULL;
static void *log_user = NULL;

void
rx_set_log(rx_log_fn *fn, void *user)
{
    log_fn = fn;
    log_user = fn != NULL ? user : NULL;
}

void
rx__log(rx_log_level level, const char *fmt, ...)
{
    char msg[LOG_MSG_MAX];
    va_list ap;
    size_t len;
    int n;

    if (log_fn == NULL || fmt == NULL)
        return;

    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        /* An encoding error; say so rather than drop the event. */
        (void)snprintf(msg, sizeof(msg), "log: cannot format message '%s'", fmt);
    }

    /* The sink gets one line without its newline (rxjob.h), whatever the caller wrote. */
    len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        msg[--len] = '\0';

    log_fn(level, msg, log_user);
}
