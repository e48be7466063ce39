/*
 * argv.c - a command task's argv and environment (see argv.h).
 *
 * These are pure string functions: no I/O, no process state other than what the caller hands
 * in, so the pool (in the caller of rx_exec) and rxjobd's supervisor (in a process of its own)
 * apply exactly the same rule.
 */
#include "exec/argv.h"

#include "core/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

char *
rx__argv_substitute(const char *s, const char *arg, size_t arg_len)
{
    size_t n = 0, len = 0;
    const char *q;
    char *out, *w;

    for (q = strstr(s, "{}"); q != NULL; q = strstr(q + 2, "{}"))
        n++;
    len = strlen(s) - 2 * n + n * arg_len;
    out = rx__malloc(len + 1);
    if (out == NULL)
        return NULL;
    w = out;
    for (;;) {
        q = strstr(s, "{}");
        if (q == NULL)
            break;
        memcpy(w, s, (size_t)(q - s));
        w += q - s;
        memcpy(w, arg, arg_len);
        w += arg_len;
        s = q + 2;
    }
    memcpy(w, s, strlen(s) + 1);
    return out;
}

static int
argv_has_placeholder(const char *const *argv)
{
    for (size_t i = 0; argv[i] != NULL; i++) {
        if (strstr(argv[i], "{}") != NULL)
            return 1;
    }
    return 0;
}

void
rx__strv_free(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        rx__free(v[i]);
    rx__free(v);
}

rx_err
rx__task_argv(const char *const *argv, const rx_buf *arg, char ***out_argv, size_t *out_n)
{
    int has_ph = argv_has_placeholder(argv);
    const char *data = arg != NULL && arg->data != NULL ? arg->data : "";
    size_t argc = 0, n;
    char **v;

    while (argv[argc] != NULL)
        argc++;
    n = argc + (arg != NULL && !has_ph ? 1 : 0);
    v = rx__calloc(n + 1, sizeof(*v));
    if (v == NULL)
        return RX_ENOMEM;
    for (size_t i = 0; i < argc; i++) {
        v[i] = arg != NULL ? rx__argv_substitute(argv[i], data, arg->len) : rx__strdup(argv[i]);
        if (v[i] == NULL)
            goto nomem;
    }
    if (n > argc) {
        v[argc] = rx__memdup(data, arg->len);
        if (v[argc] == NULL)
            goto nomem;
    }
    *out_argv = v;
    *out_n = n;
    return RX_OK;
nomem:
    rx__strv_free(v, n);
    return RX_ENOMEM;
}

static int
env_name_eq(const char *a, const char *b)
{
    while (*a != '\0' && *a != '=' && *a == *b) {
        a++;
        b++;
    }
    return (*a == '=' || *a == '\0') && (*b == '=' || *b == '\0');
}

/* RXJOB_* entries of the caller's environment are dropped: they would describe the caller's own
 * task (a job started from inside a task), never this one. */
static int
env_overridden(const char *entry, const char *const *extra)
{
    if (strncmp(entry, "RXJOB_", 6) == 0)
        return 1;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        if (env_name_eq(entry, extra[i]))
            return 1;
    }
    return 0;
}

rx_err
rx__env_merge(char *const *base, const char *const *extra, size_t extra_slots, char ***out_env,
              size_t *out_n)
{
    size_t n = 0, k = 0;
    char **env;

    for (size_t i = 0; base != NULL && base[i] != NULL; i++)
        n++;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        n++;
    env = rx__calloc(n + extra_slots + 1, sizeof(*env));
    if (env == NULL)
        return RX_ENOMEM;
    for (size_t i = 0; base != NULL && base[i] != NULL; i++) {
        if (!env_overridden(base[i], extra))
            env[k++] = base[i];
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        env[k++] = (char *)extra[i];
    *out_env = env;
    *out_n = k;
    return RX_OK;
}

char *
rx__env_entry(const char *name, const char *fmt, ...)
{
    va_list ap;
    size_t name_len = strlen(name);
    int value_len;
    char *out;

    va_start(ap, fmt);
    value_len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (value_len < 0)
        return NULL;
    out = rx__malloc(name_len + 1 + (size_t)value_len + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, name, name_len);
    out[name_len] = '=';
    va_start(ap, fmt);
    (void)vsnprintf(out + name_len + 1, (size_t)value_len + 1, fmt, ap);
    va_end(ap);
    return out;
}

const char *
rx__not_found_hint(const char *prog)
{
    if (prog == NULL || strpbrk(prog, " \t;|&<>$`'\"()*") == NULL)
        return "";
    return " (no shell runs a command: this whole string was taken as one program's name; for a "
           "shell line, run sh -c 'LINE')";
}
