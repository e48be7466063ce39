/*
 * test_error.c - error codes, the version, the checked number parser, the monotonic clock and
 * rx__read_full (src/core/error.c), the allocator and its fault-injection seam
 * (src/core/alloc.c), and the log sink (src/core/log.c), the small modules every other one
 * leans on.
 */
#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h needs the declarations of the headers above. */
#include <cmocka.h>

/* Every code in the map, with the strings the map gives it. */
struct err_entry {
    rx_err code;
    const char *name;
    const char *msg;
};

static const struct err_entry err_entries[] = {
#define RX_ERR_ENTRY(name, code, msg) {RX_##name, "RX_" #name, msg},
    RX_ERR_MAP(RX_ERR_ENTRY)
#undef RX_ERR_ENTRY
};

static void
test_error_every_code_has_its_name_and_message(void **state)
{
    (void)state;
    assert_true(RX__ARRAY_LEN(err_entries) >= 16);
    for (size_t i = 0; i < RX__ARRAY_LEN(err_entries); i++) {
        const struct err_entry *e = &err_entries[i];

        assert_string_equal(rx_errname(e->code), e->name);
        assert_string_equal(rx_strerror(e->code), e->msg);
        assert_string_not_equal(rx_errname(e->code), "RX_EUNKNOWN");
        assert_string_not_equal(rx_strerror(e->code), "unknown error");
        assert_true(strlen(e->msg) > 0);
        /* RX_OK is 0, every other code negative. */
        if (i == 0)
            assert_int_equal(e->code, RX_OK);
        else
            assert_true(e->code < 0);
    }
}

static void
test_error_codes_names_messages_distinct(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(err_entries); i++) {
        for (size_t j = i + 1; j < RX__ARRAY_LEN(err_entries); j++) {
            const struct err_entry *a = &err_entries[i];
            const struct err_entry *b = &err_entries[j];

            assert_int_not_equal(a->code, b->code);
            assert_string_not_equal(rx_errname(a->code), rx_errname(b->code));
            assert_string_not_equal(rx_strerror(a->code), rx_strerror(b->code));
        }
    }
}

static void
test_error_stable_numbers(void **state)
{
    (void)state;
    /* The numbers are ABI and cross the wire: a sample pins them. */
    assert_int_equal(RX_OK, 0);
    assert_int_equal(RX_EINVAL, -1);
    assert_int_equal(RX_ENOMEM, -2);
    assert_int_equal(RX_ECOUNT, -8);
    assert_int_equal(RX_EJOBFAILED, -9);
    assert_int_equal(RX_ENOTSUP, -15);
    assert_int_equal(RX_ELIMIT, -17);
    assert_string_equal(rx_errname(RX_ENOMEM), "RX_ENOMEM");
    assert_string_equal(rx_strerror(RX_ENOMEM), "out of memory");
}

static void
test_error_unknown_code(void **state)
{
    static const int unknown[] = {1, 2, 100, -18, -100, -1000, INT_MIN, INT_MAX};

    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(unknown); i++) {
        assert_string_equal(rx_strerror((rx_err)unknown[i]), "unknown error");
        assert_string_equal(rx_errname((rx_err)unknown[i]), "RX_EUNKNOWN");
    }
}

static void
test_error_version(void **state)
{
    char want[32];

    (void)state;
    assert_string_equal(rx_version(), "0.1.0");
    (void)snprintf(want, sizeof(want), "%d.%d.%d", RX_VERSION_MAJOR, RX_VERSION_MINOR,
                   RX_VERSION_PATCH);
    assert_string_equal(rx_version(), want);
}

/* ------------------------------------------------------------------------------------------ */

struct parse_case {
    const char *s;
    int64_t min;
    int64_t max;
    rx_err want_err;
    int64_t want;
};

static const struct parse_case parse_cases[] = {
    {"0", INT64_MIN, INT64_MAX, RX_OK, 0},
    {"42", INT64_MIN, INT64_MAX, RX_OK, 42},
    {"-42", INT64_MIN, INT64_MAX, RX_OK, -42},
    {"+7", INT64_MIN, INT64_MAX, RX_OK, 7},
    {"-0", INT64_MIN, INT64_MAX, RX_OK, 0},
    {"007", INT64_MIN, INT64_MAX, RX_OK, 7},  /* decimal, not octal */
    {"010", INT64_MIN, INT64_MAX, RX_OK, 10}, /* decimal, not octal */
    {"9223372036854775807", INT64_MIN, INT64_MAX, RX_OK, INT64_MAX},
    {"-9223372036854775808", INT64_MIN, INT64_MAX, RX_OK, INT64_MIN},
    {"9223372036854775808", INT64_MIN, INT64_MAX, RX_EINVAL, 0},  /* overflow */
    {"-9223372036854775809", INT64_MIN, INT64_MAX, RX_EINVAL, 0}, /* underflow */
    {"99999999999999999999999", INT64_MIN, INT64_MAX, RX_EINVAL, 0},
    {"", INT64_MIN, INT64_MAX, RX_EINVAL, 0},
    {"-", INT64_MIN, INT64_MAX, RX_EINVAL, 0},
    {"+", INT64_MIN, INT64_MAX, RX_EINVAL, 0},
    {"+-5", INT64_MIN, INT64_MAX, RX_EINVAL, 0},
    {"--5", INT64_MIN, INT64_MAX, RX_EINVAL, 0},
    {" 5", INT64_MIN, INT64_MAX, RX_EINVAL, 0},
    {"\t5", INT64_MIN, INT64_MAX, RX_EINVAL, 0},
    {"5 ", INT64_MIN, INT64_MAX, RX_EINVAL, 0},
    {"5\n", INT64_MIN, INT64_MAX, RX_EINVAL, 0},
    {"5x", INT64_MIN, INT64_MAX, RX_EINVAL, 0},
    {"x5", INT64_MIN, INT64_MAX, RX_EINVAL, 0},
    {"0x10", INT64_MIN, INT64_MAX, RX_EINVAL, 0},
    {"1e3", INT64_MIN, INT64_MAX, RX_EINVAL, 0},
    {"3.0", INT64_MIN, INT64_MAX, RX_EINVAL, 0},
    {"1,000", INT64_MIN, INT64_MAX, RX_EINVAL, 0},
    {"five", INT64_MIN, INT64_MAX, RX_EINVAL, 0},
    /* The range is inclusive at both ends. */
    {"0", 0, 10, RX_OK, 0},
    {"10", 0, 10, RX_OK, 10},
    {"11", 0, 10, RX_EINVAL, 0},
    {"-1", 0, 10, RX_EINVAL, 0},
    {"-5", -5, -5, RX_OK, -5},
    {"-4", -5, -5, RX_EINVAL, 0},
    {"1", 2, 1, RX_EINVAL, 0}, /* min > max is the caller's error */
};

static void
test_error_parse_i64_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(parse_cases); i++) {
        const struct parse_case *tc = &parse_cases[i];
        int64_t got = 12345;
        rx_err err = rx__parse_i64(tc->s, tc->min, tc->max, &got);

        if (err != tc->want_err)
            fail_msg("parse_i64(\"%s\", %lld, %lld) = %s, want %s", tc->s, (long long)tc->min,
                     (long long)tc->max, rx_errname(err), rx_errname(tc->want_err));
        if (tc->want_err == RX_OK)
            assert_int_equal(got, tc->want);
        else
            assert_int_equal(got, 12345); /* written only on success */
    }
}

static void
test_error_parse_i64_null(void **state)
{
    int64_t got = 7;

    (void)state;
    assert_int_equal(rx__parse_i64(NULL, 0, 10, &got), RX_EINVAL);
    assert_int_equal(got, 7);
    assert_int_equal(rx__parse_i64("5", 0, 10, NULL), RX_EINVAL);
}

static void
test_error_now_ms_is_monotonic(void **state)
{
    int64_t a, b;

    (void)state;
    a = rx__now_ms();
    b = rx__now_ms();
    assert_true(a > 0);
    assert_true(b >= a);
}

/* rx__read_full: to end of file, to the cap, and on a non-blocking pipe whose writer is still
 * open, what is there (the client reads a starting daemon's stderr so: it must not lose it). */
static void
test_error_read_full(void **state)
{
    char buf[16];
    int p[2];

    (void)state;
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "hello world", 11), 11);
    assert_int_equal(rx__read_full(p[0], buf, 5), 5); /* the cap */
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(rx__read_full(p[0], buf, sizeof(buf)), 6); /* writer open: what is there */
    assert_memory_equal(buf, " world", 6);
    assert_int_equal(rx__read_full(p[0], buf, sizeof(buf)), 0); /* nothing now */
    assert_int_equal(write(p[1], "end", 3), 3);
    close(p[1]);
    assert_int_equal(rx__read_full(p[0], buf, sizeof(buf)), 3); /* end of file */
    assert_memory_equal(buf, "end", 3);
    close(p[0]);
    assert_int_equal(rx__read_full(p[0], buf, sizeof(buf)), -1); /* closed fd: read's errno */
    assert_int_equal(errno, EBADF);
}

/* ------------------------------------------------------------------------------------------ */

/* Every allocator test leaves the seam off, even when it fails half-way. */
static int
alloc_teardown(void **state)
{
    (void)state;
    rx__alloc_fail_after(-1);
    return 0;
}

static void
test_error_alloc_fail_after_zero(void **state)
{
    void *kept;
    void *p;

    (void)state;
    kept = rx__malloc(16);
    assert_non_null(kept);

    rx__alloc_fail_after(0);
    assert_null(rx__malloc(1));
    assert_null(rx__malloc(0));
    assert_null(rx__calloc(4, 4));
    assert_null(rx__strdup("x"));
    assert_null(rx__memdup("x", 1));
    assert_null(rx__realloc(kept, 64)); /* kept stays valid and ours */
    assert_null(rx__malloc(1));         /* still failing: every one after n */

    rx__alloc_fail_after(-1);
    p = rx__malloc(1);
    assert_non_null(p);
    rx__free(p);
    rx__free(kept);
}

static void
test_error_alloc_fail_after_n(void **state)
{
    void *a, *b, *c;

    (void)state;
    rx__alloc_fail_after(2);
    a = rx__malloc(8);
    b = rx__calloc(1, 8);
    c = rx__malloc(8);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);

    rx__alloc_fail_after(-5); /* any negative value turns failing off */
    c = rx__strdup("back");
    assert_non_null(c);
    assert_string_equal(c, "back");

    rx__free(a);
    rx__free(b);
    rx__free(c);
}

static void
test_error_alloc_copies(void **state)
{
    char *s;
    unsigned char *m;
    void *p;

    (void)state;
    s = rx__strdup("hello");
    assert_non_null(s);
    assert_string_equal(s, "hello");
    rx_free(s);

    /* memdup copies the bytes, NUL bytes included, and adds a NUL after them. */
    m = rx__memdup("a\0b", 3);
    assert_non_null(m);
    assert_memory_equal(m, "a\0b", 3);
    assert_int_equal(m[3], '\0');
    rx_free(m);

    m = rx__memdup(NULL, 0);
    assert_non_null(m);
    assert_int_equal(m[0], '\0');
    rx_free(m);

    assert_null(rx__memdup(NULL, 4));
    assert_null(rx__memdup("x", SIZE_MAX));
    assert_null(rx__strdup(NULL));

    /* Zero-byte requests succeed, so NULL always means out of memory. */
    p = rx__malloc(0);
    assert_non_null(p);
    p = rx__realloc(p, 0);
    assert_non_null(p);
    rx__free(p);
    p = rx__calloc(0, 8);
    assert_non_null(p);
    rx__free(p);

    /* calloc zeroes, realloc keeps the old bytes. */
    m = rx__calloc(4, 4);
    assert_non_null(m);
    for (size_t i = 0; i < 16; i++)
        assert_int_equal(m[i], 0);
    m[0] = 'z';
    p = rx__realloc(m, 4096);
    assert_non_null(p);
    assert_int_equal(((unsigned char *)p)[0], 'z');
    rx__free(p);

    assert_null(rx__calloc(SIZE_MAX, 2)); /* n * size overflows */

    rx_free(NULL);
    rx__free(NULL);
}

/* ------------------------------------------------------------------------------------------ */

struct log_capture {
    int calls;
    rx_log_level level;
    char msg[2048];
};

static void
capture_log(rx_log_level level, const char *msg, void *user)
{
    struct log_capture *cap = user;

    cap->calls++;
    cap->level = level;
    (void)snprintf(cap->msg, sizeof(cap->msg), "%s", msg);
}

static int
log_teardown(void **state)
{
    (void)state;
    rx_set_log(NULL, NULL);
    return 0;
}

static void
test_log_sink_gets_formatted_line(void **state)
{
    struct log_capture cap = {0};

    (void)state;
    rx__log(RX_LOG_ERROR, "nobody listens"); /* no sink: a no-op */

    rx_set_log(capture_log, &cap);
    rx__log(RX_LOG_WARN, "store: open '%s' failed: %s", "/tmp/x.db", "disk full");
    assert_int_equal(cap.calls, 1);
    assert_int_equal(cap.level, RX_LOG_WARN);
    assert_string_equal(cap.msg, "store: open '/tmp/x.db' failed: disk full");

    rx__log(RX_LOG_DEBUG, "line with its newline %d\n", 3);
    assert_int_equal(cap.calls, 2);
    assert_int_equal(cap.level, RX_LOG_DEBUG);
    assert_string_equal(cap.msg, "line with its newline 3");

    rx_set_log(NULL, &cap);
    rx__log(RX_LOG_ERROR, "gone");
    assert_int_equal(cap.calls, 2);
}

static void
test_log_long_message_is_cut(void **state)
{
    struct log_capture cap = {0};
    char big[3000];

    (void)state;
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';

    rx_set_log(capture_log, &cap);
    rx__log(RX_LOG_INFO, "%s", big);
    assert_int_equal(cap.calls, 1);
    assert_int_equal(strlen(cap.msg), 1023);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_every_code_has_its_name_and_message),
        cmocka_unit_test(test_error_codes_names_messages_distinct),
        cmocka_unit_test(test_error_stable_numbers),
        cmocka_unit_test(test_error_unknown_code),
        cmocka_unit_test(test_error_version),
        cmocka_unit_test(test_error_parse_i64_table),
        cmocka_unit_test(test_error_parse_i64_null),
        cmocka_unit_test(test_error_now_ms_is_monotonic),
        cmocka_unit_test(test_error_read_full),
        cmocka_unit_test_teardown(test_error_alloc_fail_after_zero, alloc_teardown),
        cmocka_unit_test_teardown(test_error_alloc_fail_after_n, alloc_teardown),
        cmocka_unit_test_teardown(test_error_alloc_copies, alloc_teardown),
        cmocka_unit_test_teardown(test_log_sink_gets_formatted_line, log_teardown),
        cmocka_unit_test_teardown(test_log_long_message_is_cut, log_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
