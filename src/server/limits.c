/*
 * limits.c - rxjobd's named limits (limits.h): their defaults, `--limit NAME=VALUE`, the one
 * reason every refusal gives, and the table GET /v1/daemon shows. One table drives all four, so
 * a limit cannot be settable but unshown, or shown under another name than the one it is set by.
 */
#include "server/limits.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIB ((uint64_t)1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

typedef struct limit_def {
    const char *name;
    size_t offset;     /* in rx_limits */
    const char *unit;  /* "bytes" allows the K/M/G suffixes */
    uint64_t def;      /* default */
    uint64_t min, max; /* the values --limit accepts */
} limit_def;

#define L(field) offsetof(rx_limits, field)

/* The bounds keep every limit where the code under it holds: a body's base64 text under
 * B64_MAX_TEXT_BYTES (1 GiB), a result under RX_RESULT_MAX_BYTES, counts within a size_t. */
static const limit_def defs[] = {
    {"body_bytes", L(body_bytes), "bytes", 16 * MIB, 1 * KIB, 1 * GIB},
    {"argv_count", L(argv_count), "elements", 4096, 1, 1000000},
    {"argv_bytes", L(argv_bytes), "bytes", 1 * MIB, 1, 1 * GIB},
    {"env_count", L(env_count), "entries", 4096, 0, 1000000},
    {"env_bytes", L(env_bytes), "bytes", 1 * MIB, 0, 1 * GIB},
    {"stdin_bytes", L(stdin_bytes), "bytes", 8 * MIB, 0, 1 * GIB},
    {"tasks_per_job", L(tasks_per_job), "tasks", 1000000, 1, 100000000},
    {"queued_jobs_per_user", L(queued_jobs_per_user), "jobs", 100000, 1, 100000000},
    {"output_bytes", L(output_bytes), "bytes", 0, 0, UINT64_MAX / 2},
    {"result_bytes", L(result_bytes), "bytes", RX_RESULT_MAX_BYTES, 0, RX_RESULT_MAX_BYTES},
};

#define N_DEFS (sizeof(defs) / sizeof(defs[0]))

static uint64_t *
field(rx_limits *l, const limit_def *d)
{
    return (uint64_t *)(void *)((char *)l + d->offset);
}

static const limit_def *
find(const char *name, size_t name_len)
{
    for (size_t i = 0; i < N_DEFS; i++)
        if (strlen(defs[i].name) == name_len && memcmp(defs[i].name, name, name_len) == 0)
            return &defs[i];
    return NULL;
}

void
rx_limits_default(rx_limits *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < N_DEFS; i++)
        *field(out, &defs[i]) = defs[i].def;
}

rx_err
rx_limits_set(rx_limits *l, const char *name_value, char *why, size_t why_len)
{
    const char *eq = name_value != NULL ? strchr(name_value, '=') : NULL;
    const limit_def *d;
    const char *v;
    char *end = NULL;
    unsigned long long x;
    uint64_t mult = 1;

    if (why != NULL && why_len > 0)
        why[0] = '\0';
    if (l == NULL || eq == NULL || eq == name_value) {
        (void)snprintf(why, why_len, "'%.64s' is not NAME=VALUE",
                       name_value != NULL ? name_value : "");
        return RX_EINVAL;
    }
    d = find(name_value, (size_t)(eq - name_value));
    if (d == NULL) {
        size_t n = 0;

        n += (size_t)snprintf(why, why_len, "unknown limit '%.*s' (one of:",
                              (int)(eq - name_value > 64 ? 64 : eq - name_value), name_value);
        for (size_t i = 0; i < N_DEFS && n < why_len; i++)
            n += (size_t)snprintf(why + n, why_len - n, " %s", defs[i].name);
        if (n < why_len)
            (void)snprintf(why + n, why_len - n, ")");
        return RX_EINVAL;
    }
    v = eq + 1;
    /* strtoull takes a sign and leading blanks: only plain digits are a number here. */
    if (*v < '0' || *v > '9')
        goto bad;
    errno = 0;
    x = strtoull(v, &end, 10);
    if (errno != 0)
        goto range;
    if (*end != '\0' && strcmp(d->unit, "bytes") == 0 && end[1] == '\0') {
        if (*end == 'K')
            mult = KIB;
        else if (*end == 'M')
            mult = MIB;
        else if (*end == 'G')
            mult = GIB;
        else
            goto bad;
        end++;
    }
    if (*end != '\0')
        goto bad;
    if (x > UINT64_MAX / mult)
        goto range;
    x *= mult;
    if (x < d->min || x > d->max)
        goto range;
    *field(l, d) = (uint64_t)x;
    return RX_OK;

bad:
    (void)snprintf(why, why_len, "%s: '%.64s' is not a number of %s%s", d->name, v, d->unit,
                   strcmp(d->unit, "bytes") == 0 ? " (a decimal, with an optional K, M or G)" : "");
    return RX_EINVAL;
range:
    (void)snprintf(why, why_len,
                   "%s: %.64s is out of range: it must be %" PRIu64 " to %" PRIu64 " %s", d->name,
                   v, d->min, d->max, d->unit);
    return RX_EINVAL;
}

const char *
rx_limits_unit(const char *name)
{
    const limit_def *d = name != NULL ? find(name, strlen(name)) : NULL;

    return d != NULL ? d->unit : NULL;
}

int
rx_limits_get(const rx_limits *l, const char *name, uint64_t *out_value)
{
    const limit_def *d = name != NULL ? find(name, strlen(name)) : NULL;

    if (d == NULL || l == NULL)
        return -1;
    *out_value = *field((rx_limits *)(uintptr_t)l, d);
    return 0;
}

rx_err
rx_limits_why(rx_err err, char *why, size_t why_len, const char *name, uint64_t value,
              uint64_t limit)
{
    const char *unit = rx_limits_unit(name);

    if (why == NULL || why_len == 0)
        return err;
    if (value > 0)
        (void)snprintf(why, why_len,
                       "%s limit exceeded: %" PRIu64 " > %" PRIu64 " %s (rxjobd --limit %s=...)",
                       name, value, limit, unit != NULL ? unit : "", name);
    else
        (void)snprintf(why, why_len,
                       "%s limit exceeded: more than %" PRIu64 " %s (rxjobd --limit %s=...)", name,
                       limit, unit != NULL ? unit : "", name);
    return err;
}

json_t *
rx_limits_json(const rx_limits *l)
{
    json_t *obj = json_object();

    for (size_t i = 0; obj != NULL && i < N_DEFS; i++) {
        json_t *one = json_pack("{s:I, s:s}", "value",
                                (json_int_t)*field((rx_limits *)(uintptr_t)l, &defs[i]), "unit",
                                defs[i].unit);

        if (json_object_set_new(obj, defs[i].name, one) != 0) {
            json_decref(obj);
            obj = NULL;
        }
    }
    return obj;
}
