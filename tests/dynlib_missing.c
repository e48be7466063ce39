/*
 * dynlib_missing.c - librxjob without libcurl or without libcrypto (src/client/dynlib.c): built
 * twice by tests/CMakeLists.txt from the library's own sources, with RX_CURL_SONAME or
 * RX_CRYPTO_SONAME naming a library that does not exist (test_dynlib_nocurl,
 * test_dynlib_nocrypto). The server context's calls then fail with RX_ECONTEXT and a message
 * naming the library and dlerror's reason, every time, and never crash; the local context, which
 * needs neither, runs as before; and libcurl is not mapped into a process until a server context
 * makes its first request.
 */
#include "rxjob.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the declarations of the headers above. */
#include <cmocka.h>

#ifndef RX_TEST_MISSING_SONAME
#error "RX_TEST_MISSING_SONAME: the SONAME that does not exist"
#endif
#ifndef RX_TEST_MISSING_CURL
#error "RX_TEST_MISSING_CURL: 1 when libcurl is the missing one, 0 when libcrypto is"
#endif

/* No daemon is there: with a url, the library never starts one. */
#define NO_DAEMON_URL "unix:/nonexistent-rxjob-dynlib-test/socket"

/* 1 when a mapping of this process's file names contains needle (/proc/self/maps). */
static int
mapped(const char *needle)
{
    char line[4096];
    int found = 0;
    FILE *f = fopen("/proc/self/maps", "r");

    assert_non_null(f);
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, needle) != NULL;
    (void)fclose(f);
    return found;
}

/* The error message of a failed load: it names the missing library and says it cannot load it. */
static void
assert_names_library(const char *msg)
{
    assert_non_null(msg);
    if (strstr(msg, RX_TEST_MISSING_SONAME) == NULL || strstr(msg, "cannot load") == NULL)
        fail_msg("message does not name %s: '%s'", RX_TEST_MISSING_SONAME, msg);
}

/* rx_exec on a server context: RX_ECONTEXT naming the library, twice (the first failure is
 * remembered, not retried into a crash); no job handed back. */
static void
test_exec_fails_cleanly(void **state)
{
    static const char *const argv[] = {"true", NULL};
    rx_work work = rx_work_command(argv);
    rx_exec_opts opts;
    rx_context *ctx = NULL;

    (void)state;
    rx_exec_opts_init(&opts);
    assert_int_equal(rx_server_context(NO_DAEMON_URL, &ctx), RX_OK);
    for (int i = 0; i < 2; i++) {
        rx_job *job = NULL;

        assert_int_equal(rx_exec(ctx, &work, &opts, NULL, &job), RX_ECONTEXT);
        assert_null(job);
        assert_names_library(rx_context_errmsg(ctx));
    }
    print_message("rx_exec: %s\n", rx_context_errmsg(ctx));
    rx_context_free(ctx);
}

/* Collecting results decodes base64 (libcrypto) over HTTP (libcurl): RX_ECONTEXT with the
 * reason, whichever is missing; and a status query says UNDETERMINED, as for any daemon that
 * cannot be reached. */
static void
test_job_calls_fail_cleanly(void **state)
{
    rx_context *ctx = NULL;
    rx_results *res = NULL;
    rx_job *job = NULL;

    (void)state;
    assert_int_equal(rx_server_context(NO_DAEMON_URL, &ctx), RX_OK);
    assert_int_equal(rx_job_open(ctx, 1, &job), RX_OK);
    assert_int_equal(rx_get_job_results(job, RX_FALSE, RX_FALSE, &res), RX_ECONTEXT);
    assert_null(res);
    assert_names_library(rx_context_errmsg(ctx));
    assert_int_equal(rx_get_job_status(job), RX_JOB_UNDETERMINED);
    if (RX_TEST_MISSING_CURL) {
        assert_int_equal(rx_wait_for_job(job, 1.0), RX_ECONTEXT);
        assert_names_library(rx_context_errmsg(ctx));
    }
    rx_job_free(job);
    rx_context_free(ctx);
}

/* The local context needs neither library: a command runs and finishes. */
static void
test_local_context_runs(void **state)
{
    static const char *const argv[] = {"sh", "-c", "exit 0", NULL};
    rx_work work = rx_work_command(argv);
    rx_exec_opts opts;
    rx_context *ctx = NULL;
    rx_results *res = NULL;

    (void)state;
    rx_exec_opts_init(&opts);
    assert_int_equal(rx_local_context(&ctx), RX_OK);
    assert_int_equal(rx_exec(ctx, &work, &opts, &res, NULL), RX_OK);
    assert_int_equal(rx_results_status(res), RX_JOB_FINISHED);
    rx_results_free(res);
    rx_context_free(ctx);
}

/* Nothing before a server context's first request maps libcurl (here the run starts with it not
 * mapped, and creating a server context maps nothing either); in the build where libcurl is the
 * library that exists, the failed base64 stops rx_exec before any request, so it stays unmapped. */
static void
test_libcurl_not_mapped_until_needed(void **state)
{
    static const char *const argv[] = {"true", NULL};
    rx_work work = rx_work_command(argv);
    rx_exec_opts opts;
    rx_context *ctx = NULL;
    rx_job *job = NULL;

    (void)state;
    assert_false(mapped("libcurl"));
    assert_int_equal(rx_server_context(NO_DAEMON_URL, &ctx), RX_OK);
    assert_false(mapped("libcurl"));
    rx_exec_opts_init(&opts);
    assert_int_equal(rx_exec(ctx, &work, &opts, NULL, &job), RX_ECONTEXT);
    assert_false(mapped("libcurl"));
    rx_context_free(ctx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_libcurl_not_mapped_until_needed),
        cmocka_unit_test(test_exec_fails_cleanly),
        cmocka_unit_test(test_job_calls_fail_cleanly),
        cmocka_unit_test(test_local_context_runs),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
