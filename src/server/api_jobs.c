/*
 * api_jobs.c - JSON in and out of rxjobd's job API (docs/protocol.md), as pure functions (but
 * the results writer, which reads result files).
 *
 * A submission is decoded in one pass over a table of the fields protocol.md allows: anything
 * else is refused by name before a single value is looked at, so a misspelt option never passes
 * silently for its default. Each value is then checked for its JSON type, its range, and, for
 * `_b64` fields, strict base64 (b64.c) and the limits of protocol.md, counted on the decoded
 * bytes. Byte strings that must become C strings (argv, env, cwd, exe, and a command's
 * elem_args, which end up in argv) may not hold a NUL byte. The first problem found is the one
 * reported, in the shape of the core's reasons: "times_to_run is 0: ...".
 *
 * Query strings arrive as (key, value) pairs, already split and unescaped by the HTTP layer
 * (which never decodes %00: a NUL cannot reach a value, so "1%00" is refused, not read as "1").
 *
 * Results go out through a writer that produces the body piece by piece, reading each value
 * from its file one step at a time, so neither a result nor its base64 text is ever whole in
 * memory.
 */
#include "server/api_jobs.h"

#include "core/internal.h"
#include "core/spec.h"
#include "server/b64.h"
#include "server/limits.h"
#include "store/spool.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest user string (a field name, a state name) quoted in a reason, in bytes. */
#define QUOTE_MAX 64

static rx_err fail(char *why, size_t why_len, rx_err err, const char *fmt, ...) RX_PRINTF(4, 5);

/* Write a reason to why (when the caller wants one) and return err. */
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

/* ------------------------------------------------------------------------------------------ */
/* Submissions                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/* Refuse any key of obj not in allowed (NULL-terminated); where names obj in the reason. */
static rx_err
check_fields(json_t *obj, const char *const *allowed, const char *where, char *why, size_t why_len)
{
    const char *key;
    json_t *value;

    json_object_foreach(obj, key, value)
    {
        int known = 0;

        (void)value;
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known)
            return fail(why, why_len, RX_EINVAL, "unknown field '%.*s'%s%s", QUOTE_MAX, key,
                        where[0] != '\0' ? " in " : "", where);
    }
    return RX_OK;
}

static const char *
json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "a JSON value";
}

static rx_err
wrong_type(const char *field, const json_t *v, const char *want, char *why, size_t why_len)
{
    return fail(why, why_len, RX_EINVAL, "%s is %s: it must be %s", field, json_type_name(v), want);
}

/* The index of a field that is not an element of an array (field_name). */
#define NOT_ELEMENT SIZE_MAX

/* A field's name for a message: field itself, or "field[idx]" written into buf. Called only
 * when there is something to say: an array of a few thousand elements (an environment) must not
 * cost a formatted name per element. */
static const char *
field_name(char *buf, size_t len, const char *field, size_t idx)
{
    if (idx == NOT_ELEMENT)
        return field;
    (void)snprintf(buf, len, "%s[%zu]", field, idx);
    return buf;
}

/*
 * Decode the base64 string v (named field, or field[idx] when idx is not NOT_ELEMENT) into
 * *out_data / *out_len. max_len caps the decoded length (checked before decoding): over it is
 * RX_ETOOBIG naming limit_name (limits.h), or RX_EINVAL when limit_name is NULL (a fixed bound);
 * with no_nul the bytes may not hold a NUL.
 */
static rx_err
decode_b64_field(const json_t *v, const char *field, size_t idx, uint64_t max_len,
                 const char *limit_name, int no_nul, unsigned char **out_data, size_t *out_len,
                 char *why, size_t why_len)
{
    char name[64];
    const char *text;
    size_t text_len;
    size_t len;
    unsigned char *data = NULL;
    rx_err err;

    if (!json_is_string(v))
        return wrong_type(field_name(name, sizeof(name), field, idx), v, "a base64 string", why,
                          why_len);
    text = json_string_value(v);
    text_len = json_string_length(v);
    if (!b64_check(text, text_len, &len))
        return fail(why, why_len, RX_EINVAL, "%s is not valid base64 (RFC 4648, with padding)",
                    field_name(name, sizeof(name), field, idx));
    if (len > max_len && limit_name != NULL)
        return rx_limits_why(RX_ETOOBIG, why, why_len, limit_name, len, max_len);
    if (len > max_len)
        return fail(why, why_len, RX_EINVAL, "%s has %zu bytes, more than the limit of %" PRIu64,
                    field_name(name, sizeof(name), field, idx), len, max_len);
    err = b64_decode(text, text_len, &data, &len);
    if (err != RX_OK)
        return fail(why, why_len, err, "%s: %s", field_name(name, sizeof(name), field, idx),
                    rx_strerror(err));
    if (no_nul && memchr(data, '\0', len) != NULL) {
        rx__free(data);
        return fail(why, why_len, RX_EINVAL, "%s holds a NUL byte, which a C string cannot carry",
                    field_name(name, sizeof(name), field, idx));
    }
    *out_data = data;
    *out_len = len;
    return RX_OK;
}

static void
free_strv(char **v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; v[i] != NULL; i++)
        rx__free(v[i]);
    rx__free(v);
}

/*
 * Decode an array of base64 strings into a NULL-terminated vector of C strings: at least min_n
 * and at most max_n elements (the limit n_name), at most max_bytes decoded bytes in all (the
 * limit bytes_name; counted without the NULs that end them). with_eq: each must look like
 * "NAME=value" (an environment entry).
 */
static rx_err
decode_strv_field(const json_t *v, const char *field, size_t min_n, const char *n_name,
                  uint64_t max_n, const char *bytes_name, uint64_t max_bytes, int with_eq,
                  char ***out_v, char *why, size_t why_len)
{
    char **strv = NULL;
    size_t n;
    size_t total = 0;
    char name[64];
    rx_err err;

    if (!json_is_array(v))
        return wrong_type(field, v, "an array of base64 strings", why, why_len);
    n = json_array_size(v);
    if (n < min_n)
        return fail(why, why_len, RX_EINVAL, "%s is empty", field);
    if (n > max_n)
        return rx_limits_why(RX_ETOOBIG, why, why_len, n_name, n, max_n);
    /* The total is checked on the decoded lengths before anything is decoded (an element that
     * is not valid base64 is reported as such below). */
    for (size_t i = 0; i < n; i++) {
        const json_t *elem = json_array_get(v, i);
        size_t len = 0;

        if (json_is_string(elem) &&
            b64_check(json_string_value(elem), json_string_length(elem), &len))
            total += len;
    }
    if (total > max_bytes)
        return rx_limits_why(RX_ETOOBIG, why, why_len, bytes_name, total, max_bytes);
    total = 0;
    strv = rx__calloc(n + 1, sizeof(*strv));
    if (strv == NULL)
        return fail(why, why_len, RX_ENOMEM, "out of memory");

    for (size_t i = 0; i < n; i++) {
        const json_t *elem = json_array_get(v, i);
        unsigned char *data = NULL;
        size_t len = 0;

        err = decode_b64_field(elem, field, i, max_bytes - total, bytes_name, 1, &data, &len, why,
                               why_len);
        if (err != RX_OK)
            goto fail;
        strv[i] = (char *)data;
        total += len;
        if (with_eq && (len == 0 || data[0] == '=' || memchr(data, '=', len) == NULL)) {
            err = fail(why, why_len, RX_EINVAL, "%s is not of the form NAME=value",
                       field_name(name, sizeof(name), field, i));
            goto fail;
        }
    }
    *out_v = strv;
    return RX_OK;

fail:
    free_strv(strv);
    return err;
}

/* An optional boolean field. */
static rx_err
get_bool(json_t *obj, const char *field, int *io_value, char *why, size_t why_len)
{
    json_t *v = json_object_get(obj, field);

    if (v == NULL)
        return RX_OK;
    if (!json_is_boolean(v))
        return wrong_type(field, v, "true or false", why, why_len);
    *io_value = json_is_true(v);
    return RX_OK;
}

/* An optional integer field in [min, max]; a reason that names the range otherwise. */
static rx_err
get_int(json_t *obj, const char *field, int64_t min, int64_t max, const char *range,
        int64_t *io_value, char *why, size_t why_len)
{
    json_t *v = json_object_get(obj, field);
    json_int_t x;

    if (v == NULL)
        return RX_OK;
    if (!json_is_integer(v))
        return wrong_type(field, v, "an integer", why, why_len);
    x = json_integer_value(v);
    if (x < min || x > max)
        return fail(why, why_len, RX_EINVAL, "%s is %" PRId64 ": it must be %s", field, (int64_t)x,
                    range);
    *io_value = (int64_t)x;
    return RX_OK;
}

/* A function name as rx_register_function takes it: 1..128 bytes of [A-Za-z0-9_.-]. */
static int
is_function_name(const char *s, size_t len)
{
    if (len == 0 || len > API_JOBS_MAX_NAME_BYTES)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static const char *const submit_fields[] = {
    "work",
    "elem_args_b64",
    "times_to_run",
    "num_tasks",
    "continue_on_failure",
    "execution_timeout_s",
    "console_output",
    "auto_cleanup",
    "task_chunk_size",
    NULL,
};
static const char *const command_fields[] = {"kind",    "argv_b64",  "env_b64",
                                             "cwd_b64", "stdin_b64", NULL};
static const char *const function_fields[] = {"kind",    "exe_b64", "name",
                                              "env_b64", "cwd_b64", NULL};

/* work.env_b64 and work.cwd_b64, which both kinds of work share. */
static rx_err
decode_env_cwd(json_t *work, const rx_limits *lim, engine_spec *spec, char *why, size_t why_len)
{
    json_t *v;
    rx_err err;

    v = json_object_get(work, "env_b64");
    if (v != NULL) {
        err = decode_strv_field(v, "work.env_b64", 0, "env_count", lim->env_count, "env_bytes",
                                lim->env_bytes, 1, &spec->env, why, why_len);
        if (err != RX_OK)
            return err;
    }
    v = json_object_get(work, "cwd_b64");
    if (v != NULL) {
        unsigned char *data = NULL;
        size_t len = 0;

        err = decode_b64_field(v, "work.cwd_b64", NOT_ELEMENT, API_JOBS_MAX_PATH_BYTES, NULL, 1,
                               &data, &len, why, why_len);
        if (err != RX_OK)
            return err;
        spec->cwd = (char *)data;
        if (len == 0)
            return fail(why, why_len, RX_EINVAL, "work.cwd_b64 is empty");
    }
    return RX_OK;
}

static rx_err
decode_work(json_t *work, const rx_limits *lim, engine_spec *spec, char *why, size_t why_len)
{
    json_t *kind;
    json_t *v;
    const char *kind_name;
    rx_err err;

    if (!json_is_object(work))
        return wrong_type("work", work, "an object", why, why_len);
    kind = json_object_get(work, "kind");
    if (kind == NULL)
        return fail(why, why_len, RX_EINVAL, "work.kind is missing");
    if (!json_is_string(kind))
        return wrong_type("work.kind", kind, "\"command\" or \"function\"", why, why_len);
    kind_name = json_string_value(kind);

    if (strcmp(kind_name, "command") == 0 && json_string_length(kind) == strlen("command")) {
        spec->kind = RX_WORK_COMMAND;
        err = check_fields(work, command_fields, "work (kind command)", why, why_len);
        if (err != RX_OK)
            return err;
        v = json_object_get(work, "argv_b64");
        if (v == NULL)
            return fail(why, why_len, RX_EINVAL, "work.argv_b64 is missing");
        err = decode_strv_field(v, "work.argv_b64", 1, "argv_count", lim->argv_count, "argv_bytes",
                                lim->argv_bytes, 0, &spec->argv, why, why_len);
        if (err != RX_OK)
            return err;
        if (spec->argv[0][0] == '\0')
            return fail(why, why_len, RX_EINVAL, "work.argv_b64[0] is empty: no program to run");
        v = json_object_get(work, "stdin_b64");
        if (v != NULL) {
            unsigned char *data = NULL;
            size_t len = 0;

            err = decode_b64_field(v, "work.stdin_b64", NOT_ELEMENT, lim->stdin_bytes,
                                   "stdin_bytes", 0, &data, &len, why, why_len);
            if (err != RX_OK)
                return err;
            spec->stdin_data = data;
            spec->stdin_len = len;
        }
    } else if (strcmp(kind_name, "function") == 0 &&
               json_string_length(kind) == strlen("function")) {
        unsigned char *exe = NULL;
        size_t len = 0;

        spec->kind = RX_WORK_FUNCTION;
        err = check_fields(work, function_fields, "work (kind function)", why, why_len);
        if (err != RX_OK)
            return err;
        v = json_object_get(work, "exe_b64");
        if (v == NULL)
            return fail(why, why_len, RX_EINVAL, "work.exe_b64 is missing");
        spec->argv = rx__calloc(2, sizeof(*spec->argv));
        if (spec->argv == NULL)
            return fail(why, why_len, RX_ENOMEM, "out of memory");
        err = decode_b64_field(v, "work.exe_b64", NOT_ELEMENT, API_JOBS_MAX_PATH_BYTES, NULL, 1,
                               &exe, &len, why, why_len);
        if (err != RX_OK)
            return err;
        spec->argv[0] = (char *)exe;
        if (len == 0)
            return fail(why, why_len, RX_EINVAL, "work.exe_b64 is empty: no program to run");
        v = json_object_get(work, "name");
        if (v == NULL)
            return fail(why, why_len, RX_EINVAL, "work.name is missing");
        if (!json_is_string(v))
            return wrong_type("work.name", v, "a string", why, why_len);
        if (!is_function_name(json_string_value(v), json_string_length(v)))
            return fail(why, why_len, RX_EINVAL,
                        "work.name must be 1 to %zu characters of A-Z a-z 0-9 _ . -",
                        API_JOBS_MAX_NAME_BYTES);
        spec->function_name = rx__strdup(json_string_value(v));
        if (spec->function_name == NULL)
            return fail(why, why_len, RX_ENOMEM, "out of memory");
    } else {
        return fail(why, why_len, RX_EINVAL,
                    "work.kind is '%.*s': it must be \"command\" or \"function\"", QUOTE_MAX,
                    kind_name);
    }
    return decode_env_cwd(work, lim, spec, why, why_len);
}

static rx_err
decode_elem_args(json_t *v, const rx_limits *lim, engine_spec *spec, char *why, size_t why_len)
{
    size_t n;
    rx_err err;

    if (!json_is_array(v))
        return wrong_type("elem_args_b64", v, "an array of base64 strings", why, why_len);
    n = json_array_size(v);
    spec->has_args = 1;
    if (n == 0)
        return fail(why, why_len, RX_EINVAL, "elem_args_b64 has no elements: a job needs a task");
    if (n > lim->tasks_per_job)
        return rx_limits_why(RX_ETOOBIG, why, why_len, "tasks_per_job", n, lim->tasks_per_job);
    spec->args = rx__calloc(n, sizeof(*spec->args));
    if (spec->args == NULL)
        return fail(why, why_len, RX_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        unsigned char *data = NULL;
        size_t len = 0;

        /* A command's argument goes into argv, which cannot hold a NUL (rx__exec_check). */
        err = decode_b64_field(json_array_get(v, i), "elem_args_b64", i, lim->body_bytes,
                               "body_bytes", spec->kind == RX_WORK_COMMAND, &data, &len, why,
                               why_len);
        if (err != RX_OK)
            return err;
        spec->args[i].data = data;
        spec->args[i].len = len;
        spec->n_args = i + 1;
    }
    return RX_OK;
}

static rx_err
decode_submit_object(json_t *root, const rx_limits *lim, engine_spec *spec, char *why,
                     size_t why_len)
{
    json_t *v;
    int64_t num_tasks = 0, chunk = 0;
    size_t count;
    rx_err err;

    if (!json_is_object(root))
        return fail(why, why_len, RX_EINVAL, "the body is %s: it must be a JSON object",
                    json_type_name(root));
    err = check_fields(root, submit_fields, "", why, why_len);
    if (err != RX_OK)
        return err;

    v = json_object_get(root, "work");
    if (v == NULL)
        return fail(why, why_len, RX_EINVAL, "work is missing");
    err = decode_work(v, lim, spec, why, why_len);
    if (err != RX_OK)
        return err;

    err = get_int(root, "times_to_run", -1, INT64_MAX, "-1 (derive it) or at least 1",
                  &spec->times_to_run, why, why_len);
    if (err != RX_OK)
        return err;
    if (spec->times_to_run == 0)
        return fail(why, why_len, RX_EINVAL, "times_to_run is 0: a job needs at least one task");
    if (spec->times_to_run > 0 && (uint64_t)spec->times_to_run > lim->tasks_per_job)
        return rx_limits_why(RX_ETOOBIG, why, why_len, "tasks_per_job",
                             (uint64_t)spec->times_to_run, lim->tasks_per_job);
    /* num_tasks is a count of slots; as a job's task count (no times_to_run, no elem_args) the
     * engine holds it to tasks_per_job. */
    err = get_int(root, "num_tasks", 0, API_JOBS_NUM_TASKS_MAX, "0 (the daemon's slots) to 1000000",
                  &num_tasks, why, why_len);
    if (err != RX_OK)
        return err;
    spec->num_tasks = (unsigned)num_tasks;
    /* task_chunk_size: function tasks one program process runs in a row (0 = chosen by the
     * daemon, docs/engine.md "Chunks"); any count is accepted, the engine caps it. */
    err = get_int(root, "task_chunk_size", 0, UINT32_MAX, "0 (chosen by the daemon) to 4294967295",
                  &chunk, why, why_len);
    if (err != RX_OK)
        return err;
    spec->task_chunk_size = (unsigned)chunk;

    v = json_object_get(root, "execution_timeout_s");
    if (v != NULL) {
        double t;

        if (!json_is_number(v))
            return wrong_type("execution_timeout_s", v, "a number of seconds", why, why_len);
        t = json_number_value(v);
        if (!isfinite(t) || t < 0 || t > RX_MAX_TIMEOUT_S)
            return fail(why, why_len, RX_EINVAL,
                        "execution_timeout_s is %g: it must be 0 (none) to %.0f seconds", t,
                        RX_MAX_TIMEOUT_S);
        spec->execution_timeout_s = t;
    }
    err = get_bool(root, "continue_on_failure", &spec->continue_on_failure, why, why_len);
    if (err == RX_OK)
        err = get_bool(root, "console_output", &spec->console_output, why, why_len);
    if (err == RX_OK)
        err = get_bool(root, "auto_cleanup", &spec->auto_cleanup, why, why_len);
    if (err != RX_OK)
        return err;

    v = json_object_get(root, "elem_args_b64");
    if (v != NULL) {
        err = decode_elem_args(v, lim, spec, why, why_len);
        if (err != RX_OK)
            return err;
    }

    /* The run-count rule between times_to_run and elem_args (the default count is the
     * engine's: it depends on the daemon's slots). */
    return rx__task_count(spec->times_to_run, spec->has_args, spec->n_args, 1, &count, why,
                          why_len);
}

rx_err
api_jobs_decode_submit(const char *body, size_t body_len, uid_t uid, const rx_limits *limits,
                       engine_spec **out_spec, char *why, size_t why_len)
{
    rx_limits defaults;
    const rx_limits *lim = limits;
    engine_spec *spec = NULL;
    json_t *root = NULL;
    json_error_t jerr;
    rx_err err;

    if (why != NULL && why_len > 0)
        why[0] = '\0';
    if (out_spec == NULL || (body == NULL && body_len > 0))
        return fail(why, why_len, RX_EINVAL, "no body");
    if (lim == NULL) {
        rx_limits_default(&defaults);
        lim = &defaults;
    }
    if (body_len > lim->body_bytes)
        return rx_limits_why(RX_ETOOBIG, why, why_len, "body_bytes", body_len, lim->body_bytes);

    root = json_loadb(body != NULL ? body : "", body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return fail(why, why_len, RX_EINVAL, "malformed JSON: %s (line %d, column %d)", jerr.text,
                    jerr.line, jerr.column);

    spec = rx__calloc(1, sizeof(*spec));
    if (spec == NULL) {
        err = fail(why, why_len, RX_ENOMEM, "out of memory");
        goto fail;
    }
    spec->uid = uid;
    spec->times_to_run = -1;
    spec->continue_on_failure = 1;
    spec->auto_cleanup = 1;

    err = decode_submit_object(root, lim, spec, why, why_len);
    if (err != RX_OK)
        goto fail;
    json_decref(root);
    *out_spec = spec;
    return RX_OK;

fail:
    json_decref(root);
    api_jobs_spec_free(spec);
    return err;
}

void
api_jobs_spec_free(engine_spec *spec)
{
    if (spec == NULL)
        return;
    free_strv(spec->argv);
    free_strv(spec->env);
    rx__free(spec->function_name);
    rx__free(spec->cwd);
    rx__free(spec->stdin_data);
    if (spec->args != NULL) {
        for (size_t i = 0; i < spec->n_args; i++)
            rx__free((void *)spec->args[i].data);
        rx__free(spec->args);
    }
    rx__free(spec);
}

/* ------------------------------------------------------------------------------------------ */
/* Query strings                                                                               */
/* ------------------------------------------------------------------------------------------ */

/* Refuse keys not in allowed (NULL-terminated), and repeated keys. */
static rx_err
check_args(const api_jobs_arg *args, size_t n_args, const char *const *allowed, char *why,
           size_t why_len)
{
    for (size_t i = 0; i < n_args; i++) {
        int known = 0;
        const char *key = args[i].key != NULL ? args[i].key : "";

        for (size_t k = 0; allowed[k] != NULL && !known; k++)
            known = strcmp(key, allowed[k]) == 0;
        if (!known)
            return fail(why, why_len, RX_EINVAL, "unknown query parameter '%.*s'", QUOTE_MAX, key);
        for (size_t j = 0; j < i; j++) {
            if (args[j].key != NULL && strcmp(args[j].key, key) == 0)
                return fail(why, why_len, RX_EINVAL, "query parameter '%s' is given twice", key);
        }
        if (args[i].value == NULL)
            return fail(why, why_len, RX_EINVAL, "query parameter '%s' has no value", key);
    }
    return RX_OK;
}

static const char *
find_arg(const api_jobs_arg *args, size_t n_args, const char *key)
{
    for (size_t i = 0; i < n_args; i++) {
        if (args[i].key != NULL && strcmp(args[i].key, key) == 0)
            return args[i].value;
    }
    return NULL;
}

/* A plain non-negative decimal: digits with at most one '.', at least one digit, nothing else
 * (no sign, exponent, hex, "inf" or "nan", which strtod would take). */
static rx_err
parse_seconds(const char *s, const char *key, double *out_value, char *why, size_t why_len)
{
    size_t digits = 0;
    size_t dots = 0;
    char *end = NULL;
    double x;

    for (const char *p = s; *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9')
            digits++;
        else if (*p == '.')
            dots++;
        else
            digits = dots = SIZE_MAX / 2; /* not a number: fall through to the refusal */
    }
    if (digits == 0 || dots > 1 || digits >= SIZE_MAX / 2)
        return fail(why, why_len, RX_EINVAL, "%s is '%.*s': it must be a number of seconds", key,
                    QUOTE_MAX, s);
    x = strtod(s, &end);
    if (end == NULL || *end != '\0' || !isfinite(x))
        return fail(why, why_len, RX_EINVAL, "%s is '%.*s': it must be a number of seconds", key,
                    QUOTE_MAX, s);
    *out_value = x;
    return RX_OK;
}

rx_err
api_jobs_decode_filter(const api_jobs_arg *args, size_t n_args, api_jobs_filter *out_filter,
                       char *why, size_t why_len)
{
    static const char *const allowed[] = {"state", "since_s", "until_s", NULL};
    api_jobs_filter f = {0};
    const char *s;
    rx_err err;

    if (out_filter == NULL || (args == NULL && n_args > 0))
        return fail(why, why_len, RX_EINVAL, "no place for the filter");
    err = check_args(args, n_args, allowed, why, why_len);
    if (err != RX_OK)
        return err;

    s = find_arg(args, n_args, "state");
    if (s != NULL) {
        const char *p = s;

        for (;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
            char name[32];
            rx_job_status status;

            if (len == 0 || len >= sizeof(name))
                return fail(why, why_len, RX_EINVAL, "state '%.*s' is not a job status",
                            (int)(len < QUOTE_MAX ? len : QUOTE_MAX), p);
            memcpy(name, p, len);
            name[len] = '\0';
            if (rx_job_status_parse(name, &status) != RX_OK)
                return fail(why, why_len, RX_EINVAL, "state '%s' is not a job status", name);
            f.states |= 1u << (unsigned)status;
            if (comma == NULL)
                break;
            p = comma + 1;
        }
    }
    s = find_arg(args, n_args, "since_s");
    if (s != NULL) {
        err = parse_seconds(s, "since_s", &f.since_s, why, why_len);
        if (err != RX_OK)
            return err;
    }
    s = find_arg(args, n_args, "until_s");
    if (s != NULL) {
        err = parse_seconds(s, "until_s", &f.until_s, why, why_len);
        if (err != RX_OK)
            return err;
    }
    *out_filter = f;
    return RX_OK;
}

rx_err
api_jobs_decode_wait(const api_jobs_arg *args, size_t n_args, int64_t *out_timeout_ms, char *why,
                     size_t why_len)
{
    static const char *const allowed[] = {"timeout_s", NULL};
    double timeout_s = API_JOBS_WAIT_DEFAULT_S;
    const char *s;
    rx_err err;

    if (out_timeout_ms == NULL || (args == NULL && n_args > 0))
        return fail(why, why_len, RX_EINVAL, "no place for the timeout");
    err = check_args(args, n_args, allowed, why, why_len);
    if (err != RX_OK)
        return err;
    s = find_arg(args, n_args, "timeout_s");
    if (s != NULL) {
        err = parse_seconds(s, "timeout_s", &timeout_s, why, why_len);
        if (err != RX_OK)
            return err;
        if (timeout_s > API_JOBS_WAIT_MAX_S)
            return fail(why, why_len, RX_EINVAL, "timeout_s is %s: it must be 0 to %.0f", s,
                        API_JOBS_WAIT_MAX_S);
    }
    *out_timeout_ms = (int64_t)llround(timeout_s * 1000.0);
    return RX_OK;
}

rx_err
api_jobs_decode_flag(const api_jobs_arg *args, size_t n_args, const char *key, int absent_value,
                     int *out_value, char *why, size_t why_len)
{
    const char *allowed[] = {key, NULL};
    const char *s;
    rx_err err;

    if (key == NULL || out_value == NULL || (args == NULL && n_args > 0))
        return fail(why, why_len, RX_EINVAL, "no place for the flag");
    err = check_args(args, n_args, allowed, why, why_len);
    if (err != RX_OK)
        return err;
    s = find_arg(args, n_args, key);
    if (s == NULL) {
        *out_value = absent_value;
        return RX_OK;
    }
    if (strcmp(s, "0") != 0 && strcmp(s, "1") != 0)
        return fail(why, why_len, RX_EINVAL, "%s is '%.*s': it must be 0 or 1", key, QUOTE_MAX, s);
    *out_value = s[0] == '1';
    return RX_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Responses                                                                                   */
/* ------------------------------------------------------------------------------------------ */

json_t *
api_jobs_job_json(const engine_job *job)
{
    json_t *tasks;

    if (job == NULL)
        return NULL;
    tasks = json_pack("{s:I, s:I, s:I, s:I}", "pending", (json_int_t)job->pending, "running",
                      (json_int_t)job->running, "ok", (json_int_t)job->ok, "failed",
                      (json_int_t)job->failed);
    if (tasks == NULL)
        return NULL;
    /* "o" steals tasks, even when packing fails. */
    return json_pack("{s:I, s:s, s:I, s:o, s:f, s:o, s:b, s:b, s:b, s:s}", "id",
                     (json_int_t)job->id, "status", rx_job_status_name(job->status), "n_tasks",
                     (json_int_t)job->n_tasks, "tasks", tasks, "created_s", job->created_s,
                     "ended_s", job->ended_s > 0 ? json_real(job->ended_s) : json_null(),
                     "console_output", job->console_output != 0, "auto_cleanup",
                     job->auto_cleanup != 0, "cancel_requested", job->cancel_requested != 0, "work",
                     job->kind == RX_WORK_FUNCTION ? "function" : "command");
}

/* An OK slot carries its value; any other carries its error (protocol.md). */
static int
slot_has_value(const engine_slot *slot)
{
    return slot->state == RX_TASK_OK;
}

static size_t
slot_value_len(const engine_slot *slot)
{
    return slot->value != NULL ? slot->value_len : 0;
}

/* Seconds the task ran, from its recorded start and end; 0 if it never started. */
static double
slot_elapsed_s(const engine_slot *slot)
{
    if (slot->started_s <= 0 || slot->ended_s < slot->started_s)
        return 0.0;
    return slot->ended_s - slot->started_s;
}

/* The length of the UTF-8 sequence at p (1..4), or 0 if none starts there (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF). p is NUL-terminated. */
static size_t
utf8_seq_len(const unsigned char *p)
{
    size_t n;
    unsigned min;
    unsigned cp;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;
        min = 0x80;
        cp = p[0] & 0x1fu;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        min = 0x800;
        cp = p[0] & 0x0fu;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        min = 0x10000;
        cp = p[0] & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0u) != 0x80u)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/*
 * A message (a task's error, a refusal's reason) as a JSON string. JSON text is UTF-8, and a
 * message can quote bytes that are not (a function's rx_task_fail text, a cwd, a field name cut
 * at QUOTE_MAX bytes): each byte that is not part of a valid UTF-8 sequence becomes the four
 * characters \xNN (protocol.md "Bytes"). NULL on ENOMEM.
 */
static json_t *
message_json(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    json_t *str;
    char *copy;
    size_t len = 0;

    str = json_string(s);
    if (str != NULL)
        return str;
    copy = rx__malloc(strlen(s) * 4 + 1);
    if (copy == NULL)
        return NULL;
    while (*p != '\0') {
        size_t n = utf8_seq_len(p);

        if (n == 0) {
            (void)snprintf(copy + len, 5, "\\x%02x", *p);
            len += 4;
            p++;
        } else {
            memcpy(copy + len, p, n);
            len += n;
            p += n;
        }
    }
    copy[len] = '\0';
    str = json_string(copy);
    rx__free(copy);
    return str;
}

/* The slot's fields but its value: state, then error (failed slots), exit_status, signal,
 * elapsed_s. An OK slot's value_b64 is appended after them. */
static json_t *
slot_head_json(const engine_slot *slot)
{
    const char *state = rx_task_state_name(slot->state);

    if (!slot_has_value(slot))
        return json_pack("{s:s, s:o, s:i, s:i, s:f}", "state", state, "error",
                         message_json(slot->error != NULL ? slot->error : state), "exit_status",
                         slot->exit_status, "signal", slot->signal, "elapsed_s",
                         slot_elapsed_s(slot));
    return json_pack("{s:s, s:i, s:i, s:f}", "state", state, "exit_status", slot->exit_status,
                     "signal", slot->signal, "elapsed_s", slot_elapsed_s(slot));
}

json_t *
api_jobs_slot_json(const engine_slot *slot)
{
    json_t *obj;
    char *text;
    int rc;

    if (slot == NULL)
        return NULL;
    obj = slot_head_json(slot);
    if (obj == NULL || !slot_has_value(slot))
        return obj;
    text = rx__malloc(b64_encoded_len(slot_value_len(slot)) + 1);
    if (text == NULL) {
        json_decref(obj);
        return NULL;
    }
    b64_encode(slot->value != NULL ? slot->value : "", slot_value_len(slot), text);
    rc = json_object_set_new(obj, "value_b64", json_string(text));
    rx__free(text);
    if (rc) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

json_t *
api_jobs_error_json(const char *error_name, const char *message)
{
    return json_pack("{s:s, s:o}", "error", error_name != NULL ? error_name : "RX_ESYSTEM",
                     "message", message_json(message != NULL ? message : ""));
}

unsigned
api_jobs_http_status(rx_err err)
{
    switch (err) {
    case RX_OK:
        return 200;
    case RX_EINVAL:
    case RX_ECOUNT:
        return 400;
    case RX_ENOENT:
    case RX_ENORESULTS:
        return 404;
    case RX_ENOTFINISHED:
    case RX_ECANCELED:
        return 409;
    case RX_ETOOBIG:
        return 413;
    case RX_ELIMIT:
        return 429;
    case RX_EPERM:
        return 403;
    case RX_ECONTEXT:
        return 503;
    case RX_ENOMEM:
    case RX_EIO:
    case RX_ESTORE:
    case RX_ETIMEDOUT:
    case RX_EJOBFAILED:
    case RX_ESYSTEM:
    case RX_ENOTSUP:
        return 500;
    }
    return 500;
}

/* ------------------------------------------------------------------------------------------ */
/* The results body, piece by piece                                                            */
/* ------------------------------------------------------------------------------------------ */

/* Bytes of a value read and encoded per step: a multiple of 3, so the pieces concatenate. */
#define VALUE_STEP_BYTES ((size_t)3 * 16 * 1024)

struct api_jobs_results_writer {
    const engine_results *res;
    char *text;       /* pending text (rx__malloc'd or from json_dumps: freed with free) */
    int text_is_json; /* 1: text came from jansson (free()), 0: rx__free */
    size_t text_len;  /* its length */
    size_t text_off;  /* bytes of it already written */
    size_t next_slot; /* the slot whose text comes next */
    int in_value;     /* an OK slot's value is being encoded */
    /* Where the value's bytes come from: memory (mem, mem_len) or a file (fd, file_left). */
    const unsigned char *mem;
    size_t mem_len, mem_off;
    int fd;             /* the value's file, or -1 */
    uint64_t file_left; /* bytes of it still to read (its size when opened, at most) */
    unsigned char *buf; /* VALUE_STEP_BYTES read from the file, allocated once */
    /* The step being encoded: cur_len bytes at cur, cur_off of them done. Every step but the
     * last of a value is VALUE_STEP_BYTES long. */
    const unsigned char *cur;
    size_t cur_len, cur_off;
    int done; /* the closing "]}" was queued */
};

static void
writer_drop_text(api_jobs_results_writer *w)
{
    if (w->text_is_json)
        free(w->text);
    else
        rx__free(w->text);
    w->text = NULL;
    w->text_len = w->text_off = 0;
    w->text_is_json = 0;
}

/* Queue a copy of the small string s as the pending text. */
static rx_err
writer_set_text(api_jobs_results_writer *w, const char *s)
{
    writer_drop_text(w);
    w->text = rx__strdup(s);
    if (w->text == NULL)
        return RX_ENOMEM;
    w->text_len = strlen(s);
    return RX_OK;
}

static void
writer_close_value(api_jobs_results_writer *w)
{
    if (w->fd >= 0)
        (void)close(w->fd);
    w->fd = -1;
    w->file_left = 0;
    w->mem = NULL;
    w->mem_len = w->mem_off = 0;
    w->cur = NULL;
    w->cur_len = w->cur_off = 0;
    w->in_value = 0;
}

api_jobs_results_writer *
api_jobs_results_writer_new(const engine_results *res)
{
    api_jobs_results_writer *w;
    json_t *job;
    char *job_text;
    size_t len;

    if (res == NULL)
        return NULL;
    w = rx__calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->res = res;
    w->fd = -1;

    job = api_jobs_job_json(&res->job);
    job_text = job != NULL ? json_dumps(job, JSON_COMPACT) : NULL;
    json_decref(job);
    if (job_text == NULL) {
        rx__free(w);
        return NULL;
    }
    len = strlen("{\"job\":") + strlen(job_text) + strlen(",\"slots\":[") + 1;
    w->text = rx__malloc(len);
    if (w->text != NULL)
        w->text_len = (size_t)snprintf(w->text, len, "{\"job\":%s,\"slots\":[", job_text);
    free(job_text);
    if (w->text == NULL) {
        rx__free(w);
        return NULL;
    }
    return w;
}

/* Queue a slot's JSON text, with value_b64 left open when it has a value (its bytes follow). */
static rx_err
writer_queue_slot(api_jobs_results_writer *w, const engine_slot *slot, size_t index)
{
    json_t *obj = slot_head_json(slot);
    char *obj_text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
    size_t len, obj_len;

    json_decref(obj);
    if (obj_text == NULL)
        return RX_ENOMEM;
    writer_drop_text(w);
    obj_len = strlen(obj_text);
    len = obj_len + strlen(",\"value_b64\":\"") + 2;
    w->text = rx__malloc(len);
    if (w->text == NULL) {
        free(obj_text);
        return RX_ENOMEM;
    }
    if (slot_has_value(slot) && obj_len > 0) /* "{...}" -> "{...,"value_b64":"" */
        w->text_len = (size_t)snprintf(w->text, len, "%s%.*s,\"value_b64\":\"",
                                       index > 0 ? "," : "", (int)(obj_len - 1), obj_text);
    else
        w->text_len = (size_t)snprintf(w->text, len, "%s%s", index > 0 ? "," : "", obj_text);
    free(obj_text);
    return RX_OK;
}

/*
 * Open the value of OK slot index: in memory, or its file in res->values_dir (none: an empty
 * value). A file that cannot be read as a regular file within RX_RESULT_MAX_BYTES (the task
 * put a FIFO, a symlink or a huge file there after its end was recorded) fails the slot, whose
 * state and error *failed then say so: the answer must not hang or lie.
 */
static void
writer_open_value(api_jobs_results_writer *w, const engine_slot *slot, size_t index,
                  engine_slot *failed)
{
    char path[4096];
    struct stat st;
    int fd;

    if (slot->value != NULL || w->res->values_dir == NULL) {
        w->mem = slot->value;
        w->mem_len = slot_value_len(slot);
        return;
    }
    if (slot->result_run > 0) {
        /* A task of a chunk: its bytes in the chunk's results file. */
        if (spool_task_path(w->res->values_dir, slot->result_run - 1, ".results", path,
                            sizeof(path)) != 0) {
            errno = ENAMETOOLONG;
            fd = -1;
        } else {
            fd = spool_open_read(path, &st);
        }
        if (fd >= 0 && slot->result_len <= RX_RESULT_MAX_BYTES &&
            slot->result_off <= (uint64_t)st.st_size &&
            slot->result_len <= (uint64_t)st.st_size - slot->result_off &&
            lseek(fd, (off_t)slot->result_off, SEEK_SET) == (off_t)slot->result_off) {
            w->fd = fd;
            w->file_left = slot->result_len;
            return;
        }
        if (fd >= 0 && slot->result_len <= RX_RESULT_MAX_BYTES) {
            (void)close(fd);
            fd = -1;
            errno = EIO; /* shorter than the record says */
        }
    } else {
        if (spool_task_path(w->res->values_dir, index, ".result", path, sizeof(path)) != 0) {
            errno = ENAMETOOLONG;
            fd = -1;
        } else {
            fd = spool_open_read(path, &st);
        }
        if (fd < 0 && errno == ENOENT)
            return; /* the task wrote no result: an empty value */
        if (fd >= 0 && (uint64_t)st.st_size <= RX_RESULT_MAX_BYTES) {
            w->fd = fd;
            w->file_left = (uint64_t)st.st_size;
            return;
        }
    }
    *failed = *slot;
    failed->state = RX_TASK_ERROR;
    if (fd >= 0) {
        (void)close(fd);
        failed->error = "its result could not be read: it is over the size limit";
    } else {
        failed->error = errno == EINVAL || errno == ELOOP
                            ? "its result could not be read: it is not a regular file"
                            : "its result could not be read";
    }
    rx__log(RX_LOG_WARN, "results: job %" PRId64 " task %zu: '%s': %s%s%s", w->res->job.id, index,
            path, failed->error, fd < 0 && errno != EINVAL ? ": " : "",
            fd < 0 && errno != EINVAL ? strerror(errno) : "");
}

/* Queue what follows the pending text: a value's end, the next slot, or "]}". */
static rx_err
writer_advance(api_jobs_results_writer *w)
{
    const engine_results *res = w->res;
    const engine_slot *slot;
    engine_slot failed;
    size_t index;

    if (w->in_value) {
        /* The value is fully encoded: close its string and its object. */
        writer_close_value(w);
        return writer_set_text(w, "\"}");
    }
    if (w->next_slot >= res->n) {
        w->done = 1;
        return writer_set_text(w, "]}");
    }
    index = w->next_slot++;
    slot = &res->slots[index];
    if (slot_has_value(slot)) {
        failed.state = RX_TASK_OK;
        writer_open_value(w, slot, index, &failed);
        if (failed.state != RX_TASK_OK)
            return writer_queue_slot(w, &failed, index);
        w->in_value = 1;
    }
    return writer_queue_slot(w, slot, index);
}

/* Make the next step of the value current. RX_OK (cur_len 0: the value is over); RX_EIO. */
static rx_err
writer_next_step(api_jobs_results_writer *w)
{
    size_t got = 0;

    w->cur_off = 0;
    if (w->fd < 0) {
        size_t left = w->mem_len - w->mem_off;

        w->cur = w->mem != NULL ? w->mem + w->mem_off : NULL;
        w->cur_len = left < VALUE_STEP_BYTES ? left : VALUE_STEP_BYTES;
        w->mem_off += w->cur_len;
        return RX_OK;
    }
    if (w->buf == NULL) {
        w->buf = rx__malloc(VALUE_STEP_BYTES);
        if (w->buf == NULL)
            return RX_ENOMEM;
    }
    /* A whole step unless the file ends: the steps must be multiples of 3 but the last. */
    while (got < VALUE_STEP_BYTES && w->file_left > 0) {
        size_t want = VALUE_STEP_BYTES - got;
        ssize_t n;

        if (want > w->file_left)
            want = (size_t)w->file_left;
        n = read(w->fd, w->buf + got, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rx__log(RX_LOG_ERROR, "results: job %" PRId64 ": read a result failed: %s",
                    w->res->job.id, strerror(errno));
            return RX_EIO;
        }
        if (n == 0) {
            w->file_left = 0; /* it shrank: what was there is the value */
            break;
        }
        got += (size_t)n;
        w->file_left -= (uint64_t)n;
    }
    w->cur = w->buf;
    w->cur_len = got;
    return RX_OK;
}

rx_err
api_jobs_results_writer_read(api_jobs_results_writer *w, char *buf, size_t cap, size_t *out_n)
{
    size_t n = 0;
    rx_err err;

    if (w == NULL || buf == NULL || cap == 0 || out_n == NULL)
        return RX_EINVAL;

    while (n < cap) {
        if (w->text_off < w->text_len) {
            size_t k = w->text_len - w->text_off;

            if (k > cap - n)
                k = cap - n;
            memcpy(buf + n, w->text + w->text_off, k);
            w->text_off += k;
            n += k;
            continue;
        }
        if (w->in_value && w->cur_off == w->cur_len) {
            err = writer_next_step(w);
            if (err != RX_OK)
                return err;
            if (w->cur_len == 0) {
                err = writer_advance(w); /* the value is over */
                if (err != RX_OK)
                    return err;
            }
            continue;
        }
        if (w->in_value) {
            size_t left = w->cur_len - w->cur_off;
            size_t room = cap - n;
            size_t k = left;
            char small[5];

            if (room > 4 && b64_encoded_len(k) + 1 > room)
                k = (room - 1) / 4 * 3; /* what fits, in whole groups */
            if (room > 4) {
                b64_encode(w->cur + w->cur_off, k, buf + n);
                n += b64_encoded_len(k);
                w->cur_off += k;
                continue;
            }
            /* Too little room for a group and a NUL: encode one group as pending text. */
            k = left < 3 ? left : 3;
            b64_encode(w->cur + w->cur_off, k, small);
            w->cur_off += k;
            err = writer_set_text(w, small);
            if (err != RX_OK)
                return err;
            continue;
        }
        if (w->done)
            break;
        err = writer_advance(w);
        if (err != RX_OK)
            return err;
    }
    *out_n = n;
    return RX_OK;
}

int
api_jobs_results_writer_finished(const api_jobs_results_writer *w)
{
    return w != NULL && w->done && w->text_off == w->text_len;
}

void
api_jobs_results_writer_free(api_jobs_results_writer *w)
{
    if (w == NULL)
        return;
    writer_drop_text(w);
    writer_close_value(w);
    rx__free(w->buf);
    rx__free(w);
}
