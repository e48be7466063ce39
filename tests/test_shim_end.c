/*
 * test_shim_end.c - the daemon's side of a supervisor's end message (exec_local_read_end in
 * src/server/exec_local.c; the supervisor's side is end_acked in src/shim/shim.c): "E", the exit
 * record's length in 4 bytes little-endian, the record. Whole or in pieces, malformed, cut off:
 * a real socket pair, the real parser (spool_exit_parse), and the record a supervisor formats
 * (spool_exit_format).
 */
#define _GNU_SOURCE
#include "core/internal.h"
#include "server/exec_local.h"
#include "store/spool.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* cmocka.h needs the declarations of the headers above. */
#include <cmocka.h>

/* A shim whose go_fd is one end of a socket pair; *peer is the other (the supervisor's). */
static void
shim_pair(exec_shim *sh, int *peer)
{
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    memset(sh, 0, sizeof(*sh));
    sh->pid = 0;
    sh->pidfd = -1;
    sh->go_fd = sv[0];
    *peer = sv[1];
}

/* The end message of rec, as the supervisor sends it; *out_len bytes, rx__free it. */
static char *
end_message(const spool_exit *rec, size_t *out_len)
{
    char *msg = NULL;

    assert_int_equal(spool_exit_message(rec, &msg, out_len), RX_OK);
    assert_true(*out_len > 5 && msg[0] == 'E');
    return msg;
}

static spool_exit
sample_record(void)
{
    spool_exit rec;

    memset(&rec, 0, sizeof(rec));
    rec.go = 1;
    rec.state = RX_TASK_EXIT;
    rec.exit_status = 3;
    rec.task_pid = 4242;
    rec.started_s = 1764460800.125;
    rec.ended_s = 1764460801.5;
    rec.error = "exit status 3\nwith a newline and \x01 bytes";
    return rec;
}

/* exec_local_read_end for a task of its own (a run of one), into a task's record. */
static int
read_end(exec_shim *sh, spool_exit *got, rx_err *err)
{
    spool_run_exit run;
    int rc;

    memset(&run, 0, sizeof(run));
    memset(got, 0, sizeof(*got));
    rc = exec_local_read_end(sh, 0, 1, &run, err);
    if (rc == 1 && *err == RX_OK) {
        if (run.n == 1) {
            *got = run.tasks[0];
            run.tasks[0].error = NULL; /* moved */
        } else {
            got->go = run.go;
        }
        spool_run_exit_free(&run);
    }
    return rc;
}

static void
test_shim_end_whole_message(void **state)
{
    spool_exit want = sample_record(), got;
    exec_shim sh;
    size_t len;
    char *msg = end_message(&want, &len);
    rx_err err = RX_EIO;
    int peer;

    (void)state;
    shim_pair(&sh, &peer);
    assert_int_equal(read_end(&sh, &got, &err), 0); /* nothing yet */
    assert_int_equal(write(peer, msg, len), (ssize_t)len);
    assert_int_equal(read_end(&sh, &got, &err), 1);
    assert_int_equal(err, RX_OK);
    assert_int_equal(got.go, 1);
    assert_int_equal(got.state, RX_TASK_EXIT);
    assert_int_equal(got.exit_status, 3);
    assert_int_equal(got.task_pid, 4242);
    assert_string_equal(got.error, want.error);
    assert_true(got.ended_s > 1764460801.4 && got.ended_s < 1764460801.6);
    assert_true(sh.go_fd >= 0); /* kept for "k" */
    assert_null(sh.end_buf);
    spool_exit_free(&got);
    exec_local_ack(&sh);
    assert_int_equal(sh.go_fd, -1);
    {
        char c = 0;

        assert_int_equal(read(peer, &c, 1), 1);
        assert_int_equal(c, 'k');
    }
    rx__free(msg);
    close(peer);
}

/* Byte by byte: not yet, not yet, ..., then the record. */
static void
test_shim_end_in_pieces(void **state)
{
    static char long_error[4001];
    spool_exit want = sample_record(), got;
    exec_shim sh;
    size_t len;
    char *msg;

    /* An error of 4 000 bytes: the record is over the reader's first 4 KiB, so its buffer grows
     * as the bytes come. */
    memset(long_error, 'x', sizeof(long_error) - 1);
    want.error = long_error;
    msg = end_message(&want, &len);
    rx_err err = RX_EIO;
    int peer;

    (void)state;
    shim_pair(&sh, &peer);
    for (size_t i = 0; i + 1 < len; i++) {
        assert_int_equal(write(peer, msg + i, 1), 1);
        assert_int_equal(read_end(&sh, &got, &err), 0);
    }
    assert_int_equal(write(peer, msg + len - 1, 1), 1);
    assert_int_equal(read_end(&sh, &got, &err), 1);
    assert_int_equal(err, RX_OK);
    assert_string_equal(got.error, want.error);
    spool_exit_free(&got);
    exec_local_abandon(&sh);
    rx__free(msg);
    close(peer);
}

/* Anything but an end message closes go_fd (-1): the pidfd and the record file tell the rest. */
static void
test_shim_end_refused(void **state)
{
    static const char *const bad[] = {
        "e",                 /* the old one-byte end */
        "k",                 /* not the supervisor's word */
        "E\0\0\0\0",         /* an empty record */
        "E\x01\0\x01\0",     /* 65 537 bytes: over SPOOL_EXIT_RECORD_MAX */
        "E\xff\xff\xff\xff", /* 4 GiB */
    };
    static const size_t bad_len[] = {1, 1, 5, 5, 5};

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        exec_shim sh;
        spool_exit got;
        rx_err err = RX_OK;
        int peer;

        shim_pair(&sh, &peer);
        assert_int_equal(write(peer, bad[i], bad_len[i]), (ssize_t)bad_len[i]);
        assert_int_equal(read_end(&sh, &got, &err), -1);
        assert_int_equal(sh.go_fd, -1);
        assert_null(sh.end_buf);
        close(peer);
    }
}

/* Cut off in the middle (the supervisor died): -1, nothing kept. */
static void
test_shim_end_cut_off(void **state)
{
    spool_exit want = sample_record(), got;
    exec_shim sh;
    size_t len;
    char *msg = end_message(&want, &len);
    rx_err err = RX_OK;
    int peer;

    (void)state;
    shim_pair(&sh, &peer);
    assert_int_equal(write(peer, msg, len / 2), (ssize_t)(len / 2));
    assert_int_equal(read_end(&sh, &got, &err), 0);
    assert_non_null(sh.end_buf);
    close(peer);
    assert_int_equal(read_end(&sh, &got, &err), -1);
    assert_int_equal(sh.go_fd, -1);
    assert_null(sh.end_buf);
    rx__free(msg);
}

/* A whole message whose record is not one (a user's forged bytes): 1 with RX_EINVAL, never a
 * record. */
static void
test_shim_end_malformed_record(void **state)
{
    static const char *const records[] = {
        "rxjob-exit 2\n",
        "rxjob-exit 1\ngo 1\nstate NOPE\nexit_status 0\nsignal 0\ntask_pid 1\nstarted_s 1\n"
        "ended_s 2\nerror 0\n",
        "rxjob-exit 1\ngo 1\nstate OK\nexit_status 0\nsignal 0\ntask_pid 1\nstarted_s 1\n"
        "ended_s 2\nerror 99\nshort",
        "garbage",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++) {
        size_t n = strlen(records[i]);
        char head[5] = {'E', (char)(n & 0xff), (char)((n >> 8) & 0xff), 0, 0};
        exec_shim sh;
        spool_exit got;
        rx_err err = RX_OK;
        int peer;

        shim_pair(&sh, &peer);
        assert_int_equal(write(peer, head, 5), 5);
        assert_int_equal(write(peer, records[i], n), (ssize_t)n);
        assert_int_equal(read_end(&sh, &got, &err), 1);
        assert_int_equal(err, RX_EINVAL);
        exec_local_abandon(&sh);
        close(peer);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shim_end_whole_message),    cmocka_unit_test(test_shim_end_in_pieces),
        cmocka_unit_test(test_shim_end_refused),          cmocka_unit_test(test_shim_end_cut_off),
        cmocka_unit_test(test_shim_end_malformed_record),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
