/*
 * test_api.c - rxjobd's JSON decoders and encoders (src/server/api_jobs.c) and strict base64
 * (src/server/b64.c), without a daemon: submissions (valid ones of every shape, and every kind
 * of bad input with the error and reason it gets), query strings, the job object, the streamed
 * results body, the error-to-status table, and the allocation failure paths.
 */
#include "core/internal.h"
#include "server/api_jobs.h"
#include "server/b64.h"

#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* cmocka.h needs the declarations of the headers above. */
#include <cmocka.h>

#define WHY_LEN 512
#define UID     1000

/* The default body_bytes limit (limits.h), which the big-field cases are sized around. */
#define TEST_BODY_BYTES ((size_t)16 * 1024 * 1024)

/* A minimal valid command work, to build bodies around: argv ["sh", "-c", "echo {}"]. */
#define CMD_WORK "{\"kind\": \"command\", \"argv_b64\": [\"c2g=\", \"LWM=\", \"ZWNobyB7fQ==\"]}"
/* A function work: exe "/bin/prog", name "hello". */
#define FN_WORK  "{\"kind\": \"function\", \"exe_b64\": \"L2Jpbi9wcm9n\", \"name\": \"hello\"}"

static rx_err
decode(const char *json, engine_spec **out_spec, char *why)
{
    return api_jobs_decode_submit(json, strlen(json), UID, NULL, out_spec, why, WHY_LEN);
}

/* ------------------------------------------------------------------------------------------ */
/* Valid submissions                                                                           */
/* ------------------------------------------------------------------------------------------ */

struct valid_case {
    const char *json;
    rx_work_kind kind;
    size_t argc;           /* elements of argv */
    const char *argv0;     /* argv[0] */
    const char *argv_last; /* argv[argc - 1] */
    size_t n_env;
    const char *cwd; /* or NULL */
    size_t stdin_len;
    int has_args;
    size_t n_args;
    int64_t times_to_run;
    unsigned num_tasks;
    int continue_on_failure;
    double execution_timeout_s;
    int console_output;
    int auto_cleanup;
    const char *function_name;
};

static const struct valid_case valid_cases[] = {
    /* The smallest command: every option at its default. */
    {"{\"work\": " CMD_WORK "}", RX_WORK_COMMAND, 3, "sh", "echo {}", 0, NULL, 0, 0, 0, -1, 0, 1, 0,
     0, 1, NULL},
    /* protocol.md's example, every field set. */
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\", \"LWM=\", \"ZWNobyB7fQ==\"],"
     " \"env_b64\": [\"R1JFRVRJTkc9aGk=\"], \"cwd_b64\": \"L3RtcA==\", \"stdin_b64\": "
     "\"aGVsbG8K\"},"
     " \"elem_args_b64\": [\"YQ==\", \"Yg==\"], \"times_to_run\": -1, \"num_tasks\": 0,"
     " \"continue_on_failure\": true, \"execution_timeout_s\": 0, \"console_output\": false,"
     " \"auto_cleanup\": true}",
     RX_WORK_COMMAND, 3, "sh", "echo {}", 1, "/tmp", 6, 1, 2, -1, 0, 1, 0, 0, 1, NULL},
    /* Options away from their defaults. */
    {"{\"work\": " CMD_WORK ", \"times_to_run\": 5, \"num_tasks\": 2, \"continue_on_failure\":"
     " false, \"execution_timeout_s\": 2.5, \"console_output\": true, \"auto_cleanup\": false}",
     RX_WORK_COMMAND, 3, "sh", "echo {}", 0, NULL, 0, 0, 0, 5, 2, 0, 2.5, 1, 0, NULL},
    /* elem_args with a matching times_to_run; an integer timeout. */
    {"{\"work\": " CMD_WORK ", \"elem_args_b64\": [\"\", \"YQ==\", \"YWI=\"], \"times_to_run\": 3,"
     " \"execution_timeout_s\": 60}",
     RX_WORK_COMMAND, 3, "sh", "echo {}", 0, NULL, 0, 1, 3, 3, 0, 1, 60, 0, 1, NULL},
    /* One-element argv, empty stdin, empty env array. */
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"dHJ1ZQ==\"], \"stdin_b64\": \"\","
     " \"env_b64\": []}}",
     RX_WORK_COMMAND, 1, "true", "true", 0, NULL, 0, 0, 0, -1, 0, 1, 0, 0, 1, NULL},
    /* An empty element after argv[0] is fine. */
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"ZWNobw==\", \"\"]}}", RX_WORK_COMMAND, 2,
     "echo", "", 0, NULL, 0, 0, 0, -1, 0, 1, 0, 0, 1, NULL},
    /* Limits, at the limit. */
    {"{\"work\": " CMD_WORK ", \"times_to_run\": 1000000, \"num_tasks\": 1000000,"
     " \"execution_timeout_s\": 31622400}",
     RX_WORK_COMMAND, 3, "sh", "echo {}", 0, NULL, 0, 0, 0, 1000000, 1000000, 1, 31622400.0, 0, 1,
     NULL},
    /* A function, bare. */
    {"{\"work\": " FN_WORK "}", RX_WORK_FUNCTION, 1, "/bin/prog", "/bin/prog", 0, NULL, 0, 0, 0, -1,
     0, 1, 0, 0, 1, "hello"},
    /* A function with env, cwd and elem_args holding a NUL byte (fine: no argv involved). */
    {"{\"work\": {\"kind\": \"function\", \"exe_b64\": \"L2Jpbi9wcm9n\", \"name\": \"my_fn.v2-x\","
     " \"env_b64\": [\"QT0x\", \"Qj0=\"], \"cwd_b64\": \"Lw==\"},"
     " \"elem_args_b64\": [\"AA==\", \"AGE=\"], \"num_tasks\": 1}",
     RX_WORK_FUNCTION, 1, "/bin/prog", "/bin/prog", 2, "/", 0, 1, 2, -1, 1, 1, 0, 0, 1,
     "my_fn.v2-x"},
    /* Field order does not matter; white space around the object neither. */
    {"  {\"auto_cleanup\": false, \"work\": " FN_WORK ", \"times_to_run\": 2}\n", RX_WORK_FUNCTION,
     1, "/bin/prog", "/bin/prog", 0, NULL, 0, 0, 0, 2, 0, 1, 0, 0, 0, "hello"},
};

/* task_chunk_size: 0 when absent (the daemon chooses), the count when given. */
static void
test_api_submit_chunk_size(void **state)
{
    char why[WHY_LEN] = "";
    engine_spec *spec = NULL;

    (void)state;
    assert_int_equal(decode("{\"work\": " FN_WORK "}", &spec, why), RX_OK);
    assert_int_equal(spec->task_chunk_size, 0);
    api_jobs_spec_free(spec);
    spec = NULL;
    assert_int_equal(decode("{\"work\": " FN_WORK ", \"task_chunk_size\": 4294967295}", &spec, why),
                     RX_OK);
    assert_int_equal(spec->task_chunk_size, 4294967295u);
    api_jobs_spec_free(spec);
}

static void
test_api_submit_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(valid_cases); i++) {
        const struct valid_case *tc = &valid_cases[i];
        char why[WHY_LEN] = "";
        engine_spec *spec = NULL;
        rx_err err = decode(tc->json, &spec, why);
        size_t argc = 0;
        size_t n_env = 0;

        if (err != RX_OK)
            print_error("case %zu: %s: %s\n", i, rx_errname(err), why);
        assert_int_equal(err, RX_OK);
        assert_non_null(spec);
        assert_int_equal(spec->uid, UID);
        assert_int_equal(spec->kind, tc->kind);
        assert_non_null(spec->argv);
        while (spec->argv[argc] != NULL)
            argc++;
        assert_int_equal(argc, tc->argc);
        assert_string_equal(spec->argv[0], tc->argv0);
        assert_string_equal(spec->argv[argc - 1], tc->argv_last);
        if (spec->env != NULL) {
            while (spec->env[n_env] != NULL)
                n_env++;
        }
        assert_int_equal(n_env, tc->n_env);
        if (tc->cwd == NULL)
            assert_null(spec->cwd);
        else
            assert_string_equal(spec->cwd, tc->cwd);
        assert_int_equal(spec->stdin_len, tc->stdin_len);
        assert_int_equal(spec->has_args, tc->has_args);
        assert_int_equal(spec->n_args, tc->n_args);
        assert_int_equal(spec->times_to_run, tc->times_to_run);
        assert_int_equal(spec->num_tasks, tc->num_tasks);
        assert_int_equal(spec->continue_on_failure, tc->continue_on_failure);
        assert_true(spec->execution_timeout_s == tc->execution_timeout_s);
        assert_int_equal(spec->console_output, tc->console_output);
        assert_int_equal(spec->auto_cleanup, tc->auto_cleanup);
        if (tc->function_name == NULL)
            assert_null(spec->function_name);
        else
            assert_string_equal(spec->function_name, tc->function_name);
        api_jobs_spec_free(spec);
    }
}

/* The bytes arrive exactly: env and cwd of the example, args with NUL and high bytes. */
static void
test_api_submit_bytes(void **state)
{
    static const unsigned char arg1[] = {0x00, 0xff, 0x80, 'x', 0x00};
    char why[WHY_LEN] = "";
    engine_spec *spec = NULL;
    char *json;
    char arg1_b64[16];
    size_t len;

    (void)state;
    b64_encode(arg1, sizeof(arg1), arg1_b64);
    len = strlen(FN_WORK) + strlen(arg1_b64) + 128;
    json = malloc(len);
    assert_non_null(json);
    (void)snprintf(json, len,
                   "{\"work\": {\"kind\": \"function\", \"exe_b64\": \"L2Jpbi9wcm9n\","
                   " \"name\": \"f\", \"env_b64\": [\"R1JFRVRJTkc9aGk=\"]},"
                   " \"elem_args_b64\": [\"\", \"%s\"]}",
                   arg1_b64);
    assert_int_equal(decode(json, &spec, why), RX_OK);
    assert_string_equal(spec->env[0], "GREETING=hi");
    assert_null(spec->env[1]);
    assert_int_equal(spec->n_args, 2);
    assert_int_equal(spec->args[0].len, 0);
    assert_non_null(spec->args[0].data);
    assert_int_equal(spec->args[1].len, sizeof(arg1));
    assert_memory_equal(spec->args[1].data, arg1, sizeof(arg1));
    /* Every decoded buffer is followed by a NUL, as engine_spec promises for C strings. */
    assert_int_equal(((const unsigned char *)spec->args[1].data)[sizeof(arg1)], 0);
    api_jobs_spec_free(spec);
    free(json);

    spec = NULL;
    assert_int_equal(decode("{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"Y2F0\"],"
                            " \"stdin_b64\": \"AAEC/w==\"}}",
                            &spec, why),
                     RX_OK);
    assert_int_equal(spec->stdin_len, 4);
    assert_memory_equal(spec->stdin_data, "\x00\x01\x02\xff", 4);
    api_jobs_spec_free(spec);
}

/* ------------------------------------------------------------------------------------------ */
/* Bad submissions                                                                             */
/* ------------------------------------------------------------------------------------------ */

struct bad_case {
    const char *json;
    rx_err want_err;
    const char *want_why; /* a substring of the reason */
};

static const struct bad_case bad_cases[] = {
    /* Malformed JSON, or not an object. */
    {"", RX_EINVAL, "malformed JSON"},
    {"{", RX_EINVAL, "malformed JSON"},
    {"{\"work\": " CMD_WORK "", RX_EINVAL, "malformed JSON"},
    {"{\"work\": " CMD_WORK "} trailing", RX_EINVAL, "malformed JSON"},
    {"{'work': 1}", RX_EINVAL, "malformed JSON"},
    {"nul\x01", RX_EINVAL, "malformed JSON"},
    {"[]", RX_EINVAL, "the body is an array: it must be a JSON object"},
    {"[{\"work\": " CMD_WORK "}]", RX_EINVAL, "must be a JSON object"},
    {"42", RX_EINVAL, "malformed JSON"},
    {"\"work\"", RX_EINVAL, "malformed JSON"},
    {"null", RX_EINVAL, "malformed JSON"},
    /* Duplicated keys (jansson's JSON_REJECT_DUPLICATES). */
    {"{\"work\": " CMD_WORK ", \"num_tasks\": 1, \"num_tasks\": 2}", RX_EINVAL, "duplicate"},
    /* Unknown fields, at the top and in work; misspelt options never pass for defaults. */
    {"{\"work\": " CMD_WORK ", \"timeout_s\": 5}", RX_EINVAL, "unknown field 'timeout_s'"},
    {"{\"work\": " CMD_WORK ", \"elem_args\": [\"a\"]}", RX_EINVAL, "unknown field 'elem_args'"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"argv\": [\"sh\"]}}", RX_EINVAL,
     "unknown field 'argv' in work"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"name\": \"f\"}}", RX_EINVAL,
     "unknown field 'name' in work (kind command)"},
    {"{\"work\": {\"kind\": \"function\", \"exe_b64\": \"eA==\", \"name\": \"f\","
     " \"stdin_b64\": \"\"}}",
     RX_EINVAL, "unknown field 'stdin_b64' in work (kind function)"},
    {"{\"work\": {\"kind\": \"function\", \"exe_b64\": \"eA==\", \"name\": \"f\","
     " \"argv_b64\": [\"eA==\"]}}",
     RX_EINVAL, "unknown field 'argv_b64'"},
    /* Missing required fields. */
    {"{}", RX_EINVAL, "work is missing"},
    {"{\"times_to_run\": 1}", RX_EINVAL, "work is missing"},
    {"{\"work\": {}}", RX_EINVAL, "work.kind is missing"},
    {"{\"work\": {\"kind\": \"command\"}}", RX_EINVAL, "work.argv_b64 is missing"},
    {"{\"work\": {\"kind\": \"function\", \"name\": \"f\"}}", RX_EINVAL, "work.exe_b64 is missing"},
    {"{\"work\": {\"kind\": \"function\", \"exe_b64\": \"eA==\"}}", RX_EINVAL,
     "work.name is missing"},
    /* Mistyped fields. */
    {"{\"work\": \"sh -c true\"}", RX_EINVAL, "work is a string: it must be an object"},
    {"{\"work\": null}", RX_EINVAL, "work is null"},
    {"{\"work\": {\"kind\": 2}}", RX_EINVAL, "work.kind is an integer"},
    {"{\"work\": {\"kind\": \"shell\", \"argv_b64\": [\"c2g=\"]}}", RX_EINVAL,
     "work.kind is 'shell'"},
    {"{\"work\": {\"kind\": \"COMMAND\", \"argv_b64\": [\"c2g=\"]}}", RX_EINVAL,
     "work.kind is 'COMMAND'"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": \"c2g=\"}}", RX_EINVAL,
     "work.argv_b64 is a string: it must be an array"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": {\"0\": \"c2g=\"}}}", RX_EINVAL,
     "work.argv_b64 is an object"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\", 5]}}", RX_EINVAL,
     "work.argv_b64[1] is an integer: it must be a base64 string"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [null]}}", RX_EINVAL,
     "work.argv_b64[0] is null"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"env_b64\": \"QT0x\"}}",
     RX_EINVAL, "work.env_b64 is a string"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"cwd_b64\": [\"Lw==\"]}}",
     RX_EINVAL, "work.cwd_b64 is an array"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"stdin_b64\": 0}}", RX_EINVAL,
     "work.stdin_b64 is an integer"},
    {"{\"work\": {\"kind\": \"function\", \"exe_b64\": \"eA==\", \"name\": 1}}", RX_EINVAL,
     "work.name is an integer"},
    {"{\"work\": " CMD_WORK ", \"elem_args_b64\": \"YQ==\"}", RX_EINVAL,
     "elem_args_b64 is a string: it must be an array"},
    {"{\"work\": " CMD_WORK ", \"elem_args_b64\": [1]}", RX_EINVAL,
     "elem_args_b64[0] is an integer"},
    {"{\"work\": " CMD_WORK ", \"times_to_run\": \"5\"}", RX_EINVAL,
     "times_to_run is a string: it must be an integer"},
    {"{\"work\": " CMD_WORK ", \"times_to_run\": 5.0}", RX_EINVAL,
     "times_to_run is a real number: it must be an integer"},
    {"{\"work\": " CMD_WORK ", \"times_to_run\": null}", RX_EINVAL, "times_to_run is null"},
    {"{\"work\": " CMD_WORK ", \"num_tasks\": true}", RX_EINVAL, "num_tasks is a boolean"},
    {"{\"work\": " CMD_WORK ", \"num_tasks\": 1.5}", RX_EINVAL, "num_tasks is a real number"},
    {"{\"work\": " CMD_WORK ", \"continue_on_failure\": 1}", RX_EINVAL,
     "continue_on_failure is an integer: it must be true or false"},
    {"{\"work\": " CMD_WORK ", \"console_output\": \"true\"}", RX_EINVAL,
     "console_output is a string"},
    {"{\"work\": " CMD_WORK ", \"auto_cleanup\": null}", RX_EINVAL, "auto_cleanup is null"},
    /* execution_timeout_s: JSON cannot carry NaN or infinities; strings and out of range. */
    {"{\"work\": " CMD_WORK ", \"execution_timeout_s\": \"NaN\"}", RX_EINVAL,
     "execution_timeout_s is a string: it must be a number of seconds"},
    {"{\"work\": " CMD_WORK ", \"execution_timeout_s\": \"inf\"}", RX_EINVAL,
     "execution_timeout_s is a string"},
    {"{\"work\": " CMD_WORK ", \"execution_timeout_s\": \"5\"}", RX_EINVAL,
     "execution_timeout_s is a string"},
    {"{\"work\": " CMD_WORK ", \"execution_timeout_s\": NaN}", RX_EINVAL, "malformed JSON"},
    {"{\"work\": " CMD_WORK ", \"execution_timeout_s\": Infinity}", RX_EINVAL, "malformed JSON"},
    {"{\"work\": " CMD_WORK ", \"execution_timeout_s\": 1e999}", RX_EINVAL, "malformed JSON"},
    {"{\"work\": " CMD_WORK ", \"execution_timeout_s\": -1}", RX_EINVAL,
     "execution_timeout_s is -1: it must be 0 (none) to 31622400 seconds"},
    {"{\"work\": " CMD_WORK ", \"execution_timeout_s\": -0.001}", RX_EINVAL,
     "execution_timeout_s is -0.001"},
    {"{\"work\": " CMD_WORK ", \"execution_timeout_s\": 31622400.5}", RX_EINVAL,
     "execution_timeout_s is"},
    {"{\"work\": " CMD_WORK ", \"execution_timeout_s\": 1e300}", RX_EINVAL,
     "execution_timeout_s is 1e+300"},
    /* Counts: times_to_run 0 and below -1, negative num_tasks, counts over the limit. */
    {"{\"work\": " CMD_WORK ", \"times_to_run\": 0}", RX_EINVAL, "times_to_run is 0"},
    {"{\"work\": " CMD_WORK ", \"times_to_run\": -5}", RX_EINVAL,
     "times_to_run is -5: it must be -1 (derive it) or at least 1"},
    {"{\"work\": " CMD_WORK ", \"times_to_run\": -2}", RX_EINVAL, "times_to_run is -2"},
    {"{\"work\": " CMD_WORK ", \"times_to_run\": 1000001}", RX_ETOOBIG,
     "tasks_per_job limit exceeded: 1000001 > 1000000 tasks"},
    {"{\"work\": " CMD_WORK ", \"times_to_run\": 9223372036854775807}", RX_ETOOBIG,
     "tasks_per_job limit exceeded: 9223372036854775807 > 1000000 tasks"},
    {"{\"work\": " CMD_WORK ", \"times_to_run\": 99999999999999999999999}", RX_EINVAL,
     "malformed JSON"},
    {"{\"work\": " CMD_WORK ", \"num_tasks\": -1}", RX_EINVAL,
     "num_tasks is -1: it must be 0 (the daemon's slots) to 1000000"},
    {"{\"work\": " CMD_WORK ", \"num_tasks\": 1000001}", RX_EINVAL, "num_tasks is 1000001"},
    {"{\"work\": " CMD_WORK ", \"num_tasks\": 4294967296}", RX_EINVAL, "num_tasks is 4294967296"},
    {"{\"work\": " CMD_WORK ", \"num_tasks\": -9223372036854775808}", RX_EINVAL, "num_tasks is"},
    {"{\"work\": " CMD_WORK ", \"task_chunk_size\": -1}", RX_EINVAL,
     "task_chunk_size is -1: it must be 0 (chosen by the daemon) to 4294967295"},
    {"{\"work\": " CMD_WORK ", \"task_chunk_size\": 4294967296}", RX_EINVAL,
     "task_chunk_size is 4294967296"},
    {"{\"work\": " CMD_WORK ", \"task_chunk_size\": \"8\"}", RX_EINVAL,
     "task_chunk_size is a string"},
    /* The run-count rule. */
    {"{\"work\": " CMD_WORK ", \"times_to_run\": 5, \"elem_args_b64\": [\"YQ==\", \"Yg==\","
     " \"Yw==\"]}",
     RX_ECOUNT, "times_to_run is 5 but elem_args has 3 elements"},
    {"{\"work\": " CMD_WORK ", \"elem_args_b64\": []}", RX_EINVAL, "elem_args_b64 has no elements"},
    /* Bad base64: wrong length, foreign letters, URL alphabet, white space, misplaced '='. */
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g\"]}}", RX_EINVAL,
     "work.argv_b64[0] is not valid base64"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=c2g=\"]}}", RX_EINVAL,
     "not valid base64"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g*\"]}}", RX_EINVAL,
     "not valid base64"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g-\"]}}", RX_EINVAL,
     "not valid base64"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\" c2g=\"]}}", RX_EINVAL,
     "not valid base64"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\\n\"]}}", RX_EINVAL,
     "not valid base64"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"====\"]}}", RX_EINVAL,
     "not valid base64"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c===\"]}}", RX_EINVAL,
     "not valid base64"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"stdin_b64\": \"aGVsbG8\"}}",
     RX_EINVAL, "work.stdin_b64 is not valid base64"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"cwd_b64\": \"/tmp/x\"}}",
     RX_EINVAL, "work.cwd_b64 is not valid base64"},
    {"{\"work\": " CMD_WORK ", \"elem_args_b64\": [\"YQ==\", \"Y\"]}", RX_EINVAL,
     "elem_args_b64[1] is not valid base64"},
    {"{\"work\": {\"kind\": \"function\", \"exe_b64\": \"!!\", \"name\": \"f\"}}", RX_EINVAL,
     "work.exe_b64 is not valid base64"},
    /* argv: empty, not an array, empty program, NUL bytes. */
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": []}}", RX_EINVAL, "work.argv_b64 is empty"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": null}}", RX_EINVAL,
     "work.argv_b64 is null: it must be an array"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"\"]}}", RX_EINVAL,
     "work.argv_b64[0] is empty"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2gAeA==\"]}}", RX_EINVAL,
     "work.argv_b64[0] holds a NUL byte"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\", \"AA==\"]}}", RX_EINVAL,
     "work.argv_b64[1] holds a NUL byte"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"env_b64\": [\"QT0AMQ==\"]}}",
     RX_EINVAL, "work.env_b64[0] holds a NUL byte"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"cwd_b64\": \"L3QAcA==\"}}",
     RX_EINVAL, "work.cwd_b64 holds a NUL byte"},
    {"{\"work\": {\"kind\": \"function\", \"exe_b64\": \"eAB5\", \"name\": \"f\"}}", RX_EINVAL,
     "work.exe_b64 holds a NUL byte"},
    {"{\"work\": " CMD_WORK ", \"elem_args_b64\": [\"YQ==\", \"YQBi\"]}", RX_EINVAL,
     "elem_args_b64[1] holds a NUL byte"},
    /* JSON strings cannot smuggle a NUL into a plain string field either. */
    {"{\"work\": {\"kind\": \"function\", \"exe_b64\": \"eA==\", \"name\": \"f\\u0000g\"}}",
     RX_EINVAL, "malformed JSON"},
    /* Environment entries must be NAME=value. */
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"env_b64\": [\"QQ==\"]}}",
     RX_EINVAL, "work.env_b64[0] is not of the form NAME=value"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"env_b64\": [\"PTE=\"]}}",
     RX_EINVAL, "work.env_b64[0] is not of the form NAME=value"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"env_b64\": [\"\"]}}",
     RX_EINVAL, "not of the form NAME=value"},
    /* Empty paths, bad function names. */
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"cwd_b64\": \"\"}}", RX_EINVAL,
     "work.cwd_b64 is empty"},
    {"{\"work\": {\"kind\": \"function\", \"exe_b64\": \"\", \"name\": \"f\"}}", RX_EINVAL,
     "work.exe_b64 is empty"},
    {"{\"work\": {\"kind\": \"function\", \"exe_b64\": \"eA==\", \"name\": \"\"}}", RX_EINVAL,
     "work.name must be 1 to 128 characters"},
    {"{\"work\": {\"kind\": \"function\", \"exe_b64\": \"eA==\", \"name\": \"a b\"}}", RX_EINVAL,
     "work.name must be"},
    {"{\"work\": {\"kind\": \"function\", \"exe_b64\": \"eA==\", \"name\": \"f/g\"}}", RX_EINVAL,
     "work.name must be"},
};

static void
test_api_submit_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(bad_cases); i++) {
        const struct bad_case *tc = &bad_cases[i];
        char why[WHY_LEN] = "";
        engine_spec *spec = NULL;
        rx_err err = decode(tc->json, &spec, why);

        if (err != tc->want_err || strstr(why, tc->want_why) == NULL)
            print_error("case %zu: %s\n  got %s: %s\n  want %s: ...%s...\n", i, tc->json,
                        rx_errname(err), why, rx_errname(tc->want_err), tc->want_why);
        assert_int_equal(err, tc->want_err);
        assert_non_null(strstr(why, tc->want_why));
        assert_null(spec); /* untouched on failure */
        assert_int_equal(api_jobs_http_status(err), err == RX_ETOOBIG ? 413 : 400);
    }
}

/* A body of n base64 strings, each the encoding of elem, in the array field at path. */
static char *
make_array_body(const char *prefix, const char *elem_b64, size_t n, const char *suffix)
{
    size_t elem_len = strlen(elem_b64) + 3;
    size_t len = strlen(prefix) + n * elem_len + strlen(suffix) + 1;
    char *body = malloc(len);
    char *p = body;

    assert_non_null(body);
    p += snprintf(p, len, "%s", prefix);
    for (size_t i = 0; i < n; i++)
        p += snprintf(p, len - (size_t)(p - body), "%s\"%s\"", i > 0 ? "," : "", elem_b64);
    (void)snprintf(p, len - (size_t)(p - body), "%s", suffix);
    return body;
}

/* A base64 string that decodes to n bytes of 'a', malloc'd. */
static char *
make_b64_of_len(size_t n)
{
    unsigned char *raw = malloc(n + 1);
    char *text = malloc(b64_encoded_len(n) + 1);

    assert_non_null(raw);
    assert_non_null(text);
    memset(raw, 'a', n);
    b64_encode(raw, n, text);
    free(raw);
    return text;
}

struct limit_case {
    const char *prefix;
    size_t elem_bytes; /* decoded bytes of each element */
    size_t n;          /* elements */
    const char *suffix;
    rx_err want_err;
    const char *want_why;
};

static const struct limit_case limit_cases[] = {
    /* argv elements: 4096 fit, 4097 do not. */
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [", 1, 4096, "]}}", RX_OK, NULL},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [", 1, 4097, "]}}", RX_ETOOBIG,
     "argv_count limit exceeded: 4097 > 4096 elements (rxjobd --limit argv_count=...)"},
    /* argv bytes: 1 MiB in all fits, a byte more does not. */
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [", 256 * 1024, 4, "]}}", RX_OK, NULL},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [", 256 * 1024 + 1, 4, "]}}", RX_ETOOBIG,
     "argv_bytes limit exceeded: 1048580 > 1048576 bytes (rxjobd --limit argv_bytes=...)"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [", 1024 * 1024 + 1, 1, "]}}", RX_ETOOBIG,
     "argv_bytes limit exceeded: 1048577 > 1048576 bytes"},
    /* Environment: the same limits. */
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"env_b64\": [", 0, 4097, "]}}",
     RX_ETOOBIG, "env_count limit exceeded: 4097 > 4096 entries"},
    {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"env_b64\": [", 0, 2, "]}}",
     RX_OK, NULL},
    /* elem_args: 1 000 000 tasks fit, one more does not. */
    {"{\"work\": " CMD_WORK ", \"elem_args_b64\": [", 0, 1000000, "]}", RX_OK, NULL},
    {"{\"work\": " CMD_WORK ", \"elem_args_b64\": [", 0, 1000001, "]}", RX_ETOOBIG,
     "tasks_per_job limit exceeded: 1000001 > 1000000 tasks"},
};

static void
test_api_submit_limits(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(limit_cases); i++) {
        const struct limit_case *tc = &limit_cases[i];
        /* Environment entries need an '=': "QT0x" is "A=1"; 0 bytes means "A=1" here too. */
        char *elem = tc->elem_bytes > 0 ? make_b64_of_len(tc->elem_bytes) : strdup("QT0x");
        char *body = make_array_body(tc->prefix, elem, tc->n, tc->suffix);
        char why[WHY_LEN] = "";
        engine_spec *spec = NULL;
        rx_err err = api_jobs_decode_submit(body, strlen(body), UID, NULL, &spec, why, sizeof(why));

        if (err != tc->want_err)
            print_error("case %zu: got %s: %s\n", i, rx_errname(err), why);
        assert_int_equal(err, tc->want_err);
        if (tc->want_why != NULL)
            assert_non_null(strstr(why, tc->want_why));
        api_jobs_spec_free(spec);
        free(body);
        free(elem);
    }
}

/* stdin: 8 MiB fit (base64'd, in a body within the limit), a byte more does not; and a body
 * over 16 MiB is RX_ETOOBIG unread. */
static void
test_api_submit_big_fields(void **state)
{
    static const struct {
        size_t stdin_bytes;
        rx_err want;
    } cases[] = {{8 * 1024 * 1024, RX_OK}, {8 * 1024 * 1024 + 1, RX_ETOOBIG}};
    char why[WHY_LEN] = "";
    engine_spec *spec = NULL;
    char *body;

    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(cases); i++) {
        char *text = make_b64_of_len(cases[i].stdin_bytes);
        size_t len = strlen(text) + 128;

        body = malloc(len);
        assert_non_null(body);
        (void)snprintf(body, len,
                       "{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"Y2F0\"],"
                       " \"stdin_b64\": \"%s\"}}",
                       text);
        spec = NULL;
        assert_int_equal(
            api_jobs_decode_submit(body, strlen(body), UID, NULL, &spec, why, sizeof(why)),
            cases[i].want);
        assert_true(strlen(body) <= TEST_BODY_BYTES);
        if (cases[i].want == RX_OK)
            assert_int_equal(spec->stdin_len, cases[i].stdin_bytes);
        else
            assert_non_null(strstr(why, "stdin_bytes limit exceeded: 8388609 > 8388608 bytes"));
        api_jobs_spec_free(spec);
        free(body);
        free(text);
    }

    /* Over the body limit of 16 MiB: refused on the length alone (never parsed). */
    assert_int_equal(TEST_BODY_BYTES, 16 * 1024 * 1024);
    body = malloc(TEST_BODY_BYTES + 1);
    assert_non_null(body);
    memset(body, ' ', TEST_BODY_BYTES + 1);
    spec = NULL;
    assert_int_equal(
        api_jobs_decode_submit(body, TEST_BODY_BYTES + 1, UID, NULL, &spec, why, sizeof(why)),
        RX_ETOOBIG);
    assert_null(spec);
    assert_int_equal(api_jobs_http_status(RX_ETOOBIG), 413);
    free(body);
}

#define SMALL_WORK "{\"kind\": \"command\", \"argv_b64\": [\"c2g=\"]}"

/* Limits set as `rxjobd --limit` sets them: every decoder bound follows them, at value and
 * value + 1, and each refusal names its limit. */
static void
test_api_submit_configured_limits(void **state)
{
    static const char *const settings[] = {"argv_count=2", "argv_bytes=6",  "env_count=1",
                                           "env_bytes=5",  "stdin_bytes=3", "tasks_per_job=2",
                                           "body_bytes=1K"};
    static const struct {
        const char *body;
        rx_err want;
        const char *want_why;
    } cases[] = {
        /* argv ["sh", "-c"]: 2 elements, 4 bytes; ["sh", "-c", "x"]: 3 elements. */
        {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\", \"LWM=\"]}}", RX_OK, NULL},
        {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\", \"LWM=\", \"eA==\"]}}",
         RX_ETOOBIG, "argv_count limit exceeded: 3 > 2 elements (rxjobd --limit argv_count=...)"},
        /* ["shell", "-c"]: 7 bytes. */
        {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2hlbGw=\", \"LWM=\"]}}", RX_ETOOBIG,
         "argv_bytes limit exceeded: 7 > 6 bytes (rxjobd --limit argv_bytes=...)"},
        /* env ["A=1"] fits; ["A=1", "A=1"] is 2 entries; ["A=123"] 5 bytes fits, ["A=1234"] not. */
        {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"env_b64\": [\"QT0x\"]}}",
         RX_OK, NULL},
        {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"env_b64\": [\"QT0x\", "
         "\"QT0x\"]}}",
         RX_ETOOBIG, "env_count limit exceeded: 2 > 1 entries"},
        {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"env_b64\": "
         "[\"QT0xMjM0\"]}}",
         RX_ETOOBIG, "env_bytes limit exceeded: 6 > 5 bytes"},
        /* stdin "abc" fits, "abcd" not. */
        {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"stdin_b64\": \"YWJj\"}}",
         RX_OK, NULL},
        {"{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\"], \"stdin_b64\": "
         "\"YWJjZA==\"}}",
         RX_ETOOBIG, "stdin_bytes limit exceeded: 4 > 3 bytes"},
        /* tasks: 2 fit, 3 not, by times_to_run or by elem_args. */
        {"{\"work\": " SMALL_WORK ", \"times_to_run\": 2}", RX_OK, NULL},
        {"{\"work\": " SMALL_WORK ", \"times_to_run\": 3}", RX_ETOOBIG,
         "tasks_per_job limit exceeded: 3 > 2 tasks"},
        {"{\"work\": " SMALL_WORK ", \"elem_args_b64\": [\"\", \"\", \"\"]}", RX_ETOOBIG,
         "tasks_per_job limit exceeded: 3 > 2 tasks"},
    };
    rx_limits lim;
    char why[WHY_LEN] = "";
    char *big;

    (void)state;
    rx_limits_default(&lim);
    for (size_t i = 0; i < RX__ARRAY_LEN(settings); i++)
        assert_int_equal(rx_limits_set(&lim, settings[i], why, sizeof(why)), RX_OK);
    assert_int_equal(lim.body_bytes, 1024);
    for (size_t i = 0; i < RX__ARRAY_LEN(cases); i++) {
        engine_spec *spec = NULL;
        rx_err err = api_jobs_decode_submit(cases[i].body, strlen(cases[i].body), UID, &lim, &spec,
                                            why, sizeof(why));

        if (err != cases[i].want)
            print_error("case %zu: got %s: %s\n", i, rx_errname(err), why);
        assert_int_equal(err, cases[i].want);
        if (cases[i].want_why != NULL)
            assert_non_null(strstr(why, cases[i].want_why));
        api_jobs_spec_free(spec);
    }
    /* A body of 1025 bytes, whatever it holds. */
    big = malloc(1025);
    assert_non_null(big);
    memset(big, ' ', 1025);
    {
        engine_spec *spec = NULL;

        assert_int_equal(api_jobs_decode_submit(big, 1025, UID, &lim, &spec, why, sizeof(why)),
                         RX_ETOOBIG);
        assert_null(spec);
    }
    assert_string_equal(why, "body_bytes limit exceeded: 1025 > 1024 bytes (rxjobd --limit "
                             "body_bytes=...)");
    free(big);
    assert_int_equal(api_jobs_http_status(RX_ELIMIT), 429);
}

/* rxjobd --limit NAME=VALUE: names, numbers, suffixes, ranges. */
static void
test_api_limits_set(void **state)
{
    static const struct {
        const char *arg;
        rx_err want;
        const char *why;
    } cases[] = {
        {"argv_bytes=2M", RX_OK, NULL},
        {"body_bytes=1G", RX_OK, NULL},
        {"output_bytes=0", RX_OK, NULL},
        {"queued_jobs_per_user=1", RX_OK, NULL},
        {"argv_count=2K", RX_EINVAL, "is not a number of elements"},
        {"argv_bytes=-1", RX_EINVAL, "is not a number of bytes"},
        {"argv_bytes= 1", RX_EINVAL, "is not a number"},
        {"argv_bytes=1KB", RX_EINVAL, "is not a number"},
        {"argv_bytes=", RX_EINVAL, "is not a number"},
        {"queued_jobs_per_user=0", RX_EINVAL, "out of range"},
        {"body_bytes=2G", RX_EINVAL, "out of range"},
        {"argv_bytes=99999999999999999999", RX_EINVAL, "out of range"},
        {"result_bytes=257M", RX_EINVAL, "out of range"},
        {"no_such=1", RX_EINVAL, "unknown limit 'no_such' (one of: body_bytes"},
        {"argv_bytes", RX_EINVAL, "is not NAME=VALUE"},
        {"=5", RX_EINVAL, "is not NAME=VALUE"},
    };
    rx_limits lim;
    char why[WHY_LEN];
    uint64_t v = 0;
    json_t *j;

    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(cases); i++) {
        rx_err err;

        rx_limits_default(&lim);
        err = rx_limits_set(&lim, cases[i].arg, why, sizeof(why));
        if (err != cases[i].want)
            print_error("case %s: got %s: %s\n", cases[i].arg, rx_errname(err), why);
        assert_int_equal(err, cases[i].want);
        if (cases[i].why != NULL)
            assert_non_null(strstr(why, cases[i].why));
    }
    rx_limits_default(&lim);
    assert_int_equal(rx_limits_set(&lim, "argv_bytes=2M", why, sizeof(why)), RX_OK);
    assert_int_equal(rx_limits_get(&lim, "argv_bytes", &v), 0);
    assert_int_equal(v, 2 * 1024 * 1024);
    assert_int_equal(lim.stdin_bytes, 8 * 1024 * 1024);
    assert_int_equal(lim.result_bytes, RX_RESULT_MAX_BYTES);
    j = rx_limits_json(&lim);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 10);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "argv_bytes"), "value")),
                     2 * 1024 * 1024);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "tasks_per_job"), "unit")), "tasks");
    json_decref(j);
}

/* NULL arguments, no body, and a NULL why (the reason is optional). */
static void
test_api_submit_arguments(void **state)
{
    engine_spec *spec = NULL;
    char why[WHY_LEN] = "";
    const char *ok = "{\"work\": " CMD_WORK "}";

    (void)state;
    assert_int_equal(api_jobs_decode_submit(ok, strlen(ok), UID, NULL, NULL, why, sizeof(why)),
                     RX_EINVAL);
    assert_int_equal(api_jobs_decode_submit(NULL, 5, UID, NULL, &spec, why, sizeof(why)),
                     RX_EINVAL);
    assert_int_equal(api_jobs_decode_submit(NULL, 0, UID, NULL, &spec, why, sizeof(why)),
                     RX_EINVAL);
    assert_non_null(strstr(why, "malformed JSON"));
    assert_int_equal(api_jobs_decode_submit("{}", 2, UID, NULL, &spec, NULL, 0), RX_EINVAL);
    assert_null(spec);
    /* A body is bytes, not a C string: only body_len bytes are read. */
    assert_int_equal(api_jobs_decode_submit(ok, strlen(ok) - 1, UID, NULL, &spec, why, sizeof(why)),
                     RX_EINVAL);
    assert_int_equal(api_jobs_decode_submit(ok, strlen(ok), UID, NULL, &spec, NULL, 0), RX_OK);
    api_jobs_spec_free(spec);
    api_jobs_spec_free(NULL);
}

/* Every allocation of a full decode fails in turn: RX_ENOMEM each time, no leak (ASan). */
static void
test_api_submit_alloc_failures(void **state)
{
    const char *json =
        "{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"c2g=\", \"LWM=\", \"ZWNobyB7fQ==\"],"
        " \"env_b64\": [\"R1JFRVRJTkc9aGk=\"], \"cwd_b64\": \"L3RtcA==\", \"stdin_b64\": "
        "\"aGVsbG8K\"}, \"elem_args_b64\": [\"YQ==\", \"Yg==\"]}";
    const char *fn_json = "{\"work\": " FN_WORK ", \"elem_args_b64\": [\"YQ==\"]}";
    const char *bodies[] = {json, fn_json};

    (void)state;
    for (size_t b = 0; b < RX__ARRAY_LEN(bodies); b++) {
        for (long n = 0;; n++) {
            char why[WHY_LEN] = "";
            engine_spec *spec = NULL;
            rx_err err;

            rx__alloc_fail_after(n);
            err = api_jobs_decode_submit(bodies[b], strlen(bodies[b]), UID, NULL, &spec, why,
                                         sizeof(why));
            rx__alloc_fail_after(-1);
            if (err == RX_OK) {
                assert_true(n > 5);
                api_jobs_spec_free(spec);
                break;
            }
            assert_int_equal(err, RX_ENOMEM);
            assert_null(spec);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Query strings                                                                               */
/* ------------------------------------------------------------------------------------------ */

struct filter_case {
    api_jobs_arg args[4];
    size_t n;
    rx_err want_err;
    unsigned want_states;
    double want_since_s;
    double want_until_s;
    const char *want_why;
};

#define BIT(s) (1u << (unsigned)(s))

static const struct filter_case filter_cases[] = {
    {{{0}}, 0, RX_OK, 0, 0, 0, NULL},
    {{{"state", "QUEUED"}}, 1, RX_OK, BIT(RX_JOB_QUEUED), 0, 0, NULL},
    {{{"state", "queued,Running,FINISHED"}},
     1,
     RX_OK,
     BIT(RX_JOB_QUEUED) | BIT(RX_JOB_RUNNING) | BIT(RX_JOB_FINISHED),
     0,
     0,
     NULL},
    {{{"state", "FAILED,CANCELED,UNDETERMINED"}},
     1,
     RX_OK,
     BIT(RX_JOB_FAILED) | BIT(RX_JOB_CANCELED) | BIT(RX_JOB_UNDETERMINED),
     0,
     0,
     NULL},
    {{{"since_s", "1764460800"}, {"until_s", "1764460800.5"}},
     2,
     RX_OK,
     0,
     1764460800.0,
     1764460800.5,
     NULL},
    {{{"until_s", "0"}, {"state", "FAILED"}, {"since_s", ".5"}},
     3,
     RX_OK,
     BIT(RX_JOB_FAILED),
     0.5,
     0,
     NULL},
    /* Unknown state names and bad lists. */
    {{{"state", "DONE"}}, 1, RX_EINVAL, 0, 0, 0, "state 'DONE' is not a job status"},
    {{{"state", "QUEUED,DONE"}}, 1, RX_EINVAL, 0, 0, 0, "state 'DONE'"},
    {{{"state", ""}}, 1, RX_EINVAL, 0, 0, 0, "state '' is not a job status"},
    {{{"state", "QUEUED,"}}, 1, RX_EINVAL, 0, 0, 0, "is not a job status"},
    {{{"state", ",QUEUED"}}, 1, RX_EINVAL, 0, 0, 0, "is not a job status"},
    {{{"state", "INVALID"}}, 1, RX_EINVAL, 0, 0, 0, "state 'INVALID'"},
    {{{"state", "QUEUEDQUEUEDQUEUEDQUEUEDQUEUEDQUEUEDQUEUED"}},
     1,
     RX_EINVAL,
     0,
     0,
     0,
     "is not a job status"},
    {{{"state", NULL}}, 1, RX_EINVAL, 0, 0, 0, "query parameter 'state' has no value"},
    /* Bad numbers. */
    {{{"since_s", "-1"}}, 1, RX_EINVAL, 0, 0, 0, "since_s is '-1': it must be a number"},
    {{{"since_s", "abc"}}, 1, RX_EINVAL, 0, 0, 0, "since_s is 'abc'"},
    {{{"since_s", ""}}, 1, RX_EINVAL, 0, 0, 0, "since_s is ''"},
    {{{"until_s", "1e9"}}, 1, RX_EINVAL, 0, 0, 0, "until_s is '1e9'"},
    {{{"until_s", "inf"}}, 1, RX_EINVAL, 0, 0, 0, "until_s is 'inf'"},
    {{{"until_s", "nan"}}, 1, RX_EINVAL, 0, 0, 0, "until_s is 'nan'"},
    {{{"until_s", "0x10"}}, 1, RX_EINVAL, 0, 0, 0, "until_s is '0x10'"},
    {{{"until_s", "1.2.3"}}, 1, RX_EINVAL, 0, 0, 0, "until_s is '1.2.3'"},
    {{{"until_s", " 5"}}, 1, RX_EINVAL, 0, 0, 0, "until_s is ' 5'"},
    {{{"until_s", "."}}, 1, RX_EINVAL, 0, 0, 0, "until_s is '.'"},
    /* Unknown and repeated parameters. */
    {{{"status", "QUEUED"}}, 1, RX_EINVAL, 0, 0, 0, "unknown query parameter 'status'"},
    {{{"state", "QUEUED"}, {"state", "RUNNING"}},
     2,
     RX_EINVAL,
     0,
     0,
     0,
     "query parameter 'state' is given twice"},
};

static void
test_api_filter(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(filter_cases); i++) {
        const struct filter_case *tc = &filter_cases[i];
        api_jobs_filter f = {.states = 12345, .since_s = -7, .until_s = -7};
        char why[WHY_LEN] = "";
        rx_err err = api_jobs_decode_filter(tc->args, tc->n, &f, why, sizeof(why));

        if (err != tc->want_err || (tc->want_why != NULL && strstr(why, tc->want_why) == NULL))
            print_error("case %zu: got %s: %s\n", i, rx_errname(err), why);
        assert_int_equal(err, tc->want_err);
        if (err == RX_OK) {
            assert_int_equal(f.states, tc->want_states);
            assert_true(f.since_s == tc->want_since_s);
            assert_true(f.until_s == tc->want_until_s);
        } else {
            assert_non_null(strstr(why, tc->want_why));
            assert_int_equal(f.states, 12345); /* untouched */
        }
    }
    assert_int_equal(api_jobs_decode_filter(NULL, 0, NULL, NULL, 0), RX_EINVAL);
}

struct wait_case {
    const char *value; /* NULL: no parameter */
    rx_err want_err;
    int64_t want_ms;
};

static const struct wait_case wait_cases[] = {
    {NULL, RX_OK, 30000}, {"0", RX_OK, 0},           {"60", RX_OK, 60000},
    {"0.25", RX_OK, 250}, {"59.9995", RX_OK, 60000}, {"60.001", RX_EINVAL, 0},
    {"61", RX_EINVAL, 0}, {"-1", RX_EINVAL, 0},      {"x", RX_EINVAL, 0},
    {"", RX_EINVAL, 0},   {"1e1", RX_EINVAL, 0},
};

static void
test_api_wait(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(wait_cases); i++) {
        const struct wait_case *tc = &wait_cases[i];
        api_jobs_arg arg = {"timeout_s", tc->value};
        int64_t ms = -42;
        char why[WHY_LEN] = "";
        rx_err err = api_jobs_decode_wait(&arg, tc->value != NULL, &ms, why, sizeof(why));

        assert_int_equal(err, tc->want_err);
        assert_int_equal(ms, err == RX_OK ? tc->want_ms : -42);
    }
    {
        api_jobs_arg args[] = {{"timeout", "5"}};
        int64_t ms;
        char why[WHY_LEN] = "";

        assert_int_equal(api_jobs_decode_wait(args, 1, &ms, why, sizeof(why)), RX_EINVAL);
        assert_non_null(strstr(why, "unknown query parameter 'timeout'"));
    }
}

struct flag_case {
    api_jobs_arg args[2];
    size_t n;
    rx_err want_err;
    int want_value;
};

static const struct flag_case flag_cases[] = {
    {{{0}}, 0, RX_OK, -1},
    {{{"force", "1"}}, 1, RX_OK, 1},
    {{{"force", "0"}}, 1, RX_OK, 0},
    {{{"force", "true"}}, 1, RX_EINVAL, 0},
    {{{"force", "2"}}, 1, RX_EINVAL, 0},
    {{{"force", ""}}, 1, RX_EINVAL, 0},
    {{{"force", "01"}}, 1, RX_EINVAL, 0},
    {{{"force", NULL}}, 1, RX_EINVAL, 0},
    {{{"follow", "1"}}, 1, RX_EINVAL, 0},
    {{{"force", "1"}, {"force", "1"}}, 2, RX_EINVAL, 0},
};

static void
test_api_flag(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(flag_cases); i++) {
        const struct flag_case *tc = &flag_cases[i];
        int value = 99;
        char why[WHY_LEN] = "";
        rx_err err = api_jobs_decode_flag(tc->args, tc->n, "force", -1, &value, why, sizeof(why));

        assert_int_equal(err, tc->want_err);
        assert_int_equal(value, err == RX_OK ? tc->want_value : 99);
        if (err != RX_OK)
            assert_true(why[0] != '\0');
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Responses                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static void
test_api_job_json(void **state)
{
    engine_job job = {
        .id = 17,
        .uid = UID,
        .status = RX_JOB_RUNNING,
        .kind = RX_WORK_COMMAND,
        .n_tasks = 20,
        .pending = 3,
        .running = 2,
        .ok = 14,
        .failed = 1,
        .created_s = 1764460800.125,
        .ended_s = 0,
        .console_output = 0,
        .auto_cleanup = 1,
        .cancel_requested = 0,
    };
    json_t *obj;
    json_t *tasks;

    (void)state;
    obj = api_jobs_job_json(&job);
    assert_non_null(obj);
    assert_int_equal(json_object_size(obj), 10);
    assert_int_equal(json_integer_value(json_object_get(obj, "id")), 17);
    assert_string_equal(json_string_value(json_object_get(obj, "status")), "RUNNING");
    assert_int_equal(json_integer_value(json_object_get(obj, "n_tasks")), 20);
    tasks = json_object_get(obj, "tasks");
    assert_int_equal(json_object_size(tasks), 4);
    assert_int_equal(json_integer_value(json_object_get(tasks, "pending")), 3);
    assert_int_equal(json_integer_value(json_object_get(tasks, "running")), 2);
    assert_int_equal(json_integer_value(json_object_get(tasks, "ok")), 14);
    assert_int_equal(json_integer_value(json_object_get(tasks, "failed")), 1);
    assert_true(json_real_value(json_object_get(obj, "created_s")) == 1764460800.125);
    assert_true(json_is_null(json_object_get(obj, "ended_s")));
    assert_true(json_is_false(json_object_get(obj, "console_output")));
    assert_true(json_is_true(json_object_get(obj, "auto_cleanup")));
    assert_true(json_is_false(json_object_get(obj, "cancel_requested")));
    assert_string_equal(json_string_value(json_object_get(obj, "work")), "command");
    json_decref(obj);

    job.status = RX_JOB_FINISHED;
    job.kind = RX_WORK_FUNCTION;
    job.ended_s = 1764460801.5;
    job.cancel_requested = 1;
    obj = api_jobs_job_json(&job);
    assert_non_null(obj);
    assert_string_equal(json_string_value(json_object_get(obj, "status")), "FINISHED");
    assert_true(json_real_value(json_object_get(obj, "ended_s")) == 1764460801.5);
    assert_true(json_is_true(json_object_get(obj, "cancel_requested")));
    assert_string_equal(json_string_value(json_object_get(obj, "work")), "function");
    json_decref(obj);
    assert_null(api_jobs_job_json(NULL));
}

static void
test_api_error_json_and_status(void **state)
{
    static const struct {
        rx_err err;
        unsigned status;
    } table[] = {
        {RX_OK, 200},         {RX_EINVAL, 400},       {RX_ECOUNT, 400},    {RX_ENOENT, 404},
        {RX_ENORESULTS, 404}, {RX_ENOTFINISHED, 409}, {RX_ECANCELED, 409}, {RX_ETOOBIG, 413},
        {RX_ESTORE, 500},     {RX_ESYSTEM, 500},      {RX_ENOMEM, 500},    {RX_EIO, 500},
        {RX_ECONTEXT, 503},   {(rx_err)-1000, 500},
    };
    json_t *obj;
    char *text;

    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(table); i++)
        assert_int_equal(api_jobs_http_status(table[i].err), table[i].status);

    obj = api_jobs_error_json(rx_errname(RX_ECOUNT), "times_to_run is 5 but elem_args has 3");
    assert_non_null(obj);
    text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"error\":\"RX_ECOUNT\","
                              "\"message\":\"times_to_run is 5 but elem_args has 3\"}");
    free(text);
    json_decref(obj);
}

/* Messages that quote bytes which are not UTF-8 (a cwd, a field name cut at its 64th byte, a
 * function's error text) still make a JSON body: each such byte reads \xNN, control bytes are
 * JSON escapes, valid UTF-8 stays. (Before, json_pack refused them and the daemon dropped the
 * connection without an answer.) */
static void
test_api_messages_not_utf8(void **state)
{
    static const struct {
        const char *in;
        const char *want; /* the message's JSON text */
    } cases[] = {
        {"cwd '\377x' is not a directory", "\"cwd '\\\\xffx' is not a directory\""},
        {"cut \xc3", "\"cut \\\\xc3\""},
        {"ok \xc3\xa9 \033[31m", "\"ok \xc3\xa9 \\u001B[31m\""},
        {"overlong \xc0\xaf surrogate \xed\xa0\x80", "\"overlong \\\\xc0\\\\xaf surrogate "
                                                     "\\\\xed\\\\xa0\\\\x80\""},
    };
    engine_slot bad;

    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(cases); i++) {
        json_t *obj = api_jobs_error_json("RX_EINVAL", cases[i].in);
        char *text;

        assert_non_null(obj);
        text = json_dumps(json_object_get(obj, "message"), JSON_ENCODE_ANY);
        assert_non_null(text);
        assert_string_equal(text, cases[i].want);
        free(text);
        json_decref(obj);

        memset(&bad, 0, sizeof(bad));
        bad.state = RX_TASK_ERROR;
        bad.error = (char *)cases[i].in;
        obj = api_jobs_slot_json(&bad);
        assert_non_null(obj);
        text = json_dumps(json_object_get(obj, "error"), JSON_ENCODE_ANY);
        assert_string_equal(text, cases[i].want);
        free(text);
        json_decref(obj);
    }
}

/* Build results, write them with a given buffer size, parse, and compare slot by slot. */
static void
check_results_body(const engine_results *res, size_t cap)
{
    api_jobs_results_writer *w = api_jobs_results_writer_new(res);
    char *buf = malloc(cap);
    char *body = NULL;
    size_t body_len = 0;
    json_t *root;
    json_t *slots;
    json_error_t jerr;

    assert_non_null(w);
    assert_non_null(buf);
    for (;;) {
        size_t n = 0;

        assert_int_equal(api_jobs_results_writer_read(w, buf, cap, &n), RX_OK);
        assert_true(n <= cap);
        if (n == 0)
            break;
        body = realloc(body, body_len + n + 1);
        assert_non_null(body);
        memcpy(body + body_len, buf, n);
        body_len += n;
    }
    api_jobs_results_writer_free(w);
    free(buf);

    root = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        print_error("cap %zu: %s\n", cap, jerr.text);
    assert_non_null(root);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(root, "job"), "id")),
                     res->job.id);
    slots = json_object_get(root, "slots");
    assert_int_equal(json_array_size(slots), res->n);
    for (size_t i = 0; i < res->n; i++) {
        const engine_slot *slot = &res->slots[i];
        json_t *js = json_array_get(slots, i);
        json_t *expected = api_jobs_slot_json(slot);

        assert_non_null(expected);
        assert_true(json_equal(js, expected));
        json_decref(expected);
        assert_string_equal(json_string_value(json_object_get(js, "state")),
                            rx_task_state_name(slot->state));
        /* Every slot says how the task exited and how long it ran. */
        assert_int_equal(json_integer_value(json_object_get(js, "exit_status")), slot->exit_status);
        assert_int_equal(json_integer_value(json_object_get(js, "signal")), slot->signal);
        assert_true(json_is_real(json_object_get(js, "elapsed_s")));
        assert_true(fabs(json_real_value(json_object_get(js, "elapsed_s")) -
                         (slot->started_s > 0 ? slot->ended_s - slot->started_s : 0.0)) < 1e-9);
        if (slot->state == RX_TASK_OK) {
            const json_t *v = json_object_get(js, "value_b64");
            unsigned char *data = NULL;
            size_t len = 0;

            assert_int_equal(json_object_size(js), 5);
            assert_int_equal(b64_decode(json_string_value(v), json_string_length(v), &data, &len),
                             RX_OK);
            assert_int_equal(len, slot->value_len);
            if (len > 0)
                assert_memory_equal(data, slot->value, len);
            rx__free(data);
        } else {
            assert_int_equal(json_object_size(js), 5);
            assert_string_equal(json_string_value(json_object_get(js, "error")), slot->error);
            assert_int_equal(json_integer_value(json_object_get(js, "exit_status")),
                             slot->exit_status);
            assert_int_equal(json_integer_value(json_object_get(js, "signal")), slot->signal);
        }
    }
    json_decref(root);
    free(body);
}

static void
test_api_results_writer(void **state)
{
    static const size_t caps[] = {1, 2, 3, 4, 5, 7, 64, 4096, 65536, 1 << 20};
    static const size_t big_len = 300 * 1024 + 2; /* several encoding steps, ragged end */
    unsigned char *big = malloc(big_len + 1);
    engine_slot slots[5];
    engine_results res;

    (void)state;
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (unsigned char)(i * 7 + (i >> 8));
    big[big_len] = 0;
    memset(slots, 0, sizeof(slots));
    slots[0] = (engine_slot){.state = RX_TASK_OK,
                             .exit_status = 0,
                             .value = "hi",
                             .value_len = 2,
                             .started_s = 1764460800.25,
                             .ended_s = 1764460801.5};
    slots[1] = (engine_slot){.state = RX_TASK_EXIT,
                             .exit_status = 2,
                             .signal = 0,
                             .error = "exit status 2 \"quoted\"\n",
                             .started_s = 1764460800.0,
                             .ended_s = 1764460800.125};
    slots[2] = (engine_slot){.state = RX_TASK_OK, .value = "", .value_len = 0};
    slots[3] = (engine_slot){.state = RX_TASK_OK, .value = big, .value_len = big_len};
    slots[4] = (engine_slot){.state = RX_TASK_SIGNALED,
                             .exit_status = -1,
                             .signal = 9,
                             .error = "killed by signal 9 (SIGKILL)"};
    memset(&res, 0, sizeof(res));
    res.job = (engine_job){.id = 5, .status = RX_JOB_FAILED, .n_tasks = 5, .ok = 3, .failed = 2};
    res.n = RX__ARRAY_LEN(slots);
    res.slots = slots;

    for (size_t i = 0; i < RX__ARRAY_LEN(caps); i++) {
        /* The big slot makes cap 1 slow; check it on the small ones only. */
        res.n = caps[i] < 64 ? 3 : RX__ARRAY_LEN(slots);
        check_results_body(&res, caps[i]);
    }

    /* No slots at all. */
    res.n = 0;
    check_results_body(&res, 16);
    free(big);
}

/* The exact text of slots, as protocol.md shows them: every slot has state, exit_status, signal
 * and elapsed_s (ended_s - started_s); an OK one then value_b64, any other error first. */
static void
test_api_slot_json_text(void **state)
{
    engine_slot ok = {.state = RX_TASK_OK,
                      .exit_status = 0,
                      .value = "hi",
                      .value_len = 2,
                      .started_s = 1764460800.25,
                      .ended_s = 1764460801.5};
    engine_slot bad = {.state = RX_TASK_EXIT,
                       .exit_status = 2,
                       .error = "exit status 2",
                       .started_s = 1764460800.0,
                       .ended_s = 1764460800.5};
    engine_slot not_run = {.state = RX_TASK_NOT_RUN, .exit_status = -1, .error = "not run"};
    engine_slot slots[2];
    engine_results res;
    api_jobs_results_writer *w;
    char buf[4096];
    size_t n = 0;
    json_t *obj;
    char *text;

    (void)state;
    obj = api_jobs_slot_json(&ok);
    text = json_dumps(obj, JSON_COMPACT);
    assert_string_equal(text, "{\"state\":\"OK\",\"exit_status\":0,\"signal\":0,\"elapsed_s\":1.25,"
                              "\"value_b64\":\"aGk=\"}");
    free(text);
    json_decref(obj);
    obj = api_jobs_slot_json(&bad);
    text = json_dumps(obj, JSON_COMPACT);
    assert_string_equal(text, "{\"state\":\"EXIT\",\"error\":\"exit status 2\",\"exit_status\":2,"
                              "\"signal\":0,\"elapsed_s\":0.5}");
    free(text);
    json_decref(obj);
    obj = api_jobs_slot_json(&not_run);
    text = json_dumps(obj, JSON_COMPACT);
    assert_string_equal(text, "{\"state\":\"NOT_RUN\",\"error\":\"not run\",\"exit_status\":-1,"
                              "\"signal\":0,\"elapsed_s\":0.0}");
    free(text);
    json_decref(obj);

    /* The streamed body says the same. */
    slots[0] = ok;
    slots[1] = bad;
    memset(&res, 0, sizeof(res));
    res.job = (engine_job){.id = 9, .status = RX_JOB_FAILED, .n_tasks = 2, .ok = 1, .failed = 1};
    res.n = 2;
    res.slots = slots;
    w = api_jobs_results_writer_new(&res);
    assert_non_null(w);
    assert_int_equal(api_jobs_results_writer_read(w, buf, sizeof(buf) - 1, &n), RX_OK);
    buf[n] = '\0';
    assert_true(api_jobs_results_writer_finished(w));
    api_jobs_results_writer_free(w);
    assert_non_null(strstr(buf, ",\"slots\":[{\"state\":\"OK\",\"exit_status\":0,\"signal\":0,"
                                "\"elapsed_s\":1.25,\"value_b64\":\"aGk=\"},{\"state\":\"EXIT\","
                                "\"error\":\"exit status 2\",\"exit_status\":2,\"signal\":0,"
                                "\"elapsed_s\":0.5}]}"));
}

/* Write the whole body with buffers of cap bytes; parsed. */
static json_t *
results_body(const engine_results *res, size_t cap)
{
    api_jobs_results_writer *w = api_jobs_results_writer_new(res);
    char *buf = malloc(cap);
    char *body = NULL;
    size_t body_len = 0;
    json_error_t jerr;
    json_t *root;

    assert_non_null(w);
    assert_non_null(buf);
    for (;;) {
        size_t n = 0;

        assert_int_equal(api_jobs_results_writer_read(w, buf, cap, &n), RX_OK);
        if (n == 0)
            break;
        body = realloc(body, body_len + n);
        assert_non_null(body);
        memcpy(body + body_len, buf, n);
        body_len += n;
    }
    assert_true(api_jobs_results_writer_finished(w));
    api_jobs_results_writer_free(w);
    free(buf);
    root = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        print_error("cap %zu: %s\n", cap, jerr.text);
    assert_non_null(root);
    free(body);
    return root;
}

static void
write_bytes(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* Values read from their files (engine_results.values_dir), step by step: a regular file is the
 * value, no file an empty one; a FIFO or a symlink in its place fails the slot at once (it must
 * never hang the writer, and never be followed). */
static void
test_api_results_from_files(void **state)
{
    static const size_t caps[] = {5, 4096, 65536};
    static const size_t big_len = 3 * 16 * 1024 * 2 + 7; /* two whole steps and a ragged end */
    char dir[] = "/tmp/rxjob-api-XXXXXX";
    char path[256], target[256];
    unsigned char *big = malloc(big_len);
    engine_slot slots[6];
    engine_results res;

    (void)state;
    assert_non_null(big);
    assert_non_null(mkdtemp(dir));
    for (size_t i = 0; i < big_len; i++)
        big[i] = (unsigned char)(i * 13 + (i >> 9));
    (void)snprintf(path, sizeof(path), "%s/t0.result", dir);
    write_bytes(path, "hello", 5);
    /* t1: no file. */
    (void)snprintf(path, sizeof(path), "%s/t2.result", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    (void)snprintf(target, sizeof(target), "%s/t0.result", dir);
    (void)snprintf(path, sizeof(path), "%s/t3.result", dir);
    assert_int_equal(symlink(target, path), 0);
    (void)snprintf(path, sizeof(path), "%s/t4.result", dir);
    write_bytes(path, big, big_len);
    memset(slots, 0, sizeof(slots));
    for (size_t i = 0; i < 5; i++)
        slots[i] = (engine_slot){.state = RX_TASK_OK, .started_s = 10.0, .ended_s = 10.5};
    slots[5] = (engine_slot){.state = RX_TASK_EXIT, .exit_status = 3, .error = "exit status 3"};
    memset(&res, 0, sizeof(res));
    res.job = (engine_job){.id = 3, .status = RX_JOB_FAILED, .n_tasks = 6, .ok = 5, .failed = 1};
    res.n = RX__ARRAY_LEN(slots);
    res.slots = slots;
    res.values_dir = dir;

    for (size_t c = 0; c < RX__ARRAY_LEN(caps); c++) {
        json_t *root = results_body(&res, caps[c]);
        json_t *js = json_object_get(root, "slots");
        unsigned char *data = NULL;
        size_t len = 0;
        const json_t *v;

        assert_int_equal(json_array_size(js), 6);
        v = json_object_get(json_array_get(js, 0), "value_b64");
        assert_string_equal(json_string_value(v), "aGVsbG8=");
        v = json_object_get(json_array_get(js, 1), "value_b64");
        assert_string_equal(json_string_value(v), "");
        for (size_t i = 2; i <= 3; i++) {
            json_t *slot = json_array_get(js, i);

            assert_string_equal(json_string_value(json_object_get(slot, "state")), "ERROR");
            assert_null(json_object_get(slot, "value_b64"));
            assert_non_null(strstr(json_string_value(json_object_get(slot, "error")),
                                   "its result could not be read"));
        }
        v = json_object_get(json_array_get(js, 4), "value_b64");
        assert_int_equal(b64_decode(json_string_value(v), json_string_length(v), &data, &len),
                         RX_OK);
        assert_int_equal(len, big_len);
        assert_memory_equal(data, big, big_len);
        rx__free(data);
        assert_string_equal(json_string_value(json_object_get(json_array_get(js, 5), "state")),
                            "EXIT");
        json_decref(root);
    }
    (void)snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    assert_int_equal(system(path), 0);
    free(big);
}

/* ------------------------------------------------------------------------------------------ */
/* base64                                                                                      */
/* ------------------------------------------------------------------------------------------ */

struct b64_case {
    const char *text;
    int ok;
    const char *bytes; /* decoded, when ok */
    size_t len;
};

static const struct b64_case b64_cases[] = {
    /* RFC 4648 section 10. */
    {"", 1, "", 0},
    {"Zg==", 1, "f", 1},
    {"Zm8=", 1, "fo", 2},
    {"Zm9v", 1, "foo", 3},
    {"Zm9vYg==", 1, "foob", 4},
    {"Zm9vYmE=", 1, "fooba", 5},
    {"Zm9vYmFy", 1, "foobar", 6},
    {"AA==", 1, "\0", 1},
    {"/+/+", 1, "\xff\xef\xfe", 3},
    /* Refused: padding missing or misplaced, foreign letters, white space. */
    {"Zg", 0, NULL, 0},
    {"Zg=", 0, NULL, 0},
    {"Zg===", 0, NULL, 0},
    {"Z===", 0, NULL, 0},
    {"====", 0, NULL, 0},
    {"=Zg=", 0, NULL, 0},
    {"Zg==Zg==", 0, NULL, 0},
    {"Zm9v\n", 0, NULL, 0},
    {" Zm9v", 0, NULL, 0},
    {"Zm 9", 0, NULL, 0},
    {"Zm9-", 0, NULL, 0},
    {"Zm9_", 0, NULL, 0},
    {"Zm9\x80", 0, NULL, 0},
    /* Refused: bits past the last byte that are not zero (not canonical: "Zg==" is "f"). */
    {"Zh==", 0, NULL, 0},
    {"Zm9=", 0, NULL, 0},
    {"dHJ1ZR==", 0, NULL, 0},
    {"dHJ1ZQ==", 1, "true", 4},
};

static void
test_api_b64(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(b64_cases); i++) {
        const struct b64_case *tc = &b64_cases[i];
        unsigned char *data = NULL;
        size_t len = 99;
        rx_err err = b64_decode(tc->text, strlen(tc->text), &data, &len);

        assert_int_equal(err, tc->ok ? RX_OK : RX_EINVAL);
        if (tc->ok) {
            char enc[32];

            assert_int_equal(len, tc->len);
            assert_memory_equal(data, tc->bytes, tc->len);
            assert_int_equal(data[len], 0);
            b64_encode(tc->bytes, tc->len, enc);
            assert_string_equal(enc, tc->text);
            assert_int_equal(b64_encoded_len(tc->len), strlen(tc->text));
        } else {
            assert_null(data);
            assert_int_equal(len, 99);
        }
        rx__free(data);
    }
    /* Every byte value round-trips, at every length mod 3. */
    {
        unsigned char raw[258];
        char enc[400];

        for (size_t i = 0; i < sizeof(raw); i++)
            raw[i] = (unsigned char)i;
        for (size_t n = 255; n <= sizeof(raw); n++) {
            unsigned char *back = NULL;
            size_t len = 0;

            b64_encode(raw, n, enc);
            assert_int_equal(strlen(enc), b64_encoded_len(n));
            assert_int_equal(b64_decode(enc, strlen(enc), &back, &len), RX_OK);
            assert_int_equal(len, n);
            assert_memory_equal(back, raw, n);
            rx__free(back);
        }
    }
    /* Every byte value, at a letter's place and before "==": taken exactly when it is one of
     * the 64 letters (and, before "==", when its low 4 bits are zero). */
    {
        static const char alphabet[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

        for (unsigned c = 0; c < 256; c++) {
            const char *at = c != 0 ? strchr(alphabet, (int)c) : NULL;
            char text[5] = {'Z', 'm', '9', (char)c, '\0'};
            char padded[5] = {'Z', (char)c, '=', '=', '\0'};
            size_t len = 0;

            assert_int_equal(b64_check(text, 4, &len), at != NULL);
            assert_int_equal(b64_check(padded, 4, &len),
                             at != NULL && ((size_t)(at - alphabet) & 0x0f) == 0);
        }
    }
    assert_int_equal(b64_decode("Zg==", 4, NULL, NULL), RX_EINVAL);
    rx__alloc_fail_after(0);
    {
        unsigned char *data = NULL;
        size_t len = 0;

        assert_int_equal(b64_decode("Zg==", 4, &data, &len), RX_ENOMEM);
        assert_null(data);
    }
    rx__alloc_fail_after(-1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_submit_valid),
        cmocka_unit_test(test_api_submit_chunk_size),
        cmocka_unit_test(test_api_submit_bytes),
        cmocka_unit_test(test_api_submit_invalid),
        cmocka_unit_test(test_api_submit_limits),
        cmocka_unit_test(test_api_submit_big_fields),
        cmocka_unit_test(test_api_submit_configured_limits),
        cmocka_unit_test(test_api_limits_set),
        cmocka_unit_test(test_api_messages_not_utf8),
        cmocka_unit_test(test_api_submit_arguments),
        cmocka_unit_test(test_api_submit_alloc_failures),
        cmocka_unit_test(test_api_filter),
        cmocka_unit_test(test_api_wait),
        cmocka_unit_test(test_api_flag),
        cmocka_unit_test(test_api_job_json),
        cmocka_unit_test(test_api_error_json_and_status),
        cmocka_unit_test(test_api_results_writer),
        cmocka_unit_test(test_api_slot_json_text),
        cmocka_unit_test(test_api_results_from_files),
        cmocka_unit_test(test_api_b64),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
