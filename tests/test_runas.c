/*
 * test_runas.c - rx__run_as (src/exec/spawn.c): the one "fork, become the user, do X, wait"
 * helper. Real forks, real credentials: needs root (skipped otherwise).
 */
#define _GNU_SOURCE
#include "exec/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs the declarations of the headers above. */
#include <cmocka.h>

#define NOBODY 65534

static void
skip_unless_root(void)
{
    if (geteuid() != 0)
        skip();
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What the child is: written to a pipe as numbers. */
static int
report_creds(void *arg)
{
    int fd = *(int *)arg;
    uid_t ru, eu, su;
    gid_t rg, eg, sg, groups[16];
    int n = getgroups(16, groups);
    char buf[512];
    int len;

    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || n < 0)
        return 3;
    len = snprintf(buf, sizeof(buf), "%u %u %u %u %u %u %d", ru, eu, su, rg, eg, sg, n);
    for (int i = 0; i < n && len < (int)sizeof(buf) - 16; i++)
        len += snprintf(buf + len, sizeof(buf) - (size_t)len, " %u", groups[i]);
    /* Root's powers are gone: neither can be taken back. */
    if (setuid(0) == 0 || setgid(0) == 0 || seteuid(0) == 0)
        return 4;
    return write(fd, buf, (size_t)len) == len ? 0 : 5;
}

static void
read_report(int fd, char *buf, size_t len)
{
    ssize_t n = read(fd, buf, len - 1);

    assert_true(n > 0);
    buf[n] = '\0';
}

/* The child is uid:gid with no supplementary group, and cannot become root again. */
static void
test_runas_drops_everything(void **state)
{
    int p[2];
    char buf[512];

    (void)state;
    skip_unless_root();
    assert_int_equal(pipe(p), 0);
    assert_int_equal(rx__run_as(NOBODY, NOBODY, NULL, 0, report_creds, &p[1], 10000), 0);
    read_report(p[0], buf, sizeof(buf));
    assert_string_equal(buf, "65534 65534 65534 65534 65534 65534 0");
    close(p[0]);
    close(p[1]);
}

/* Supplementary groups are exactly those given. */
static void
test_runas_groups(void **state)
{
    gid_t groups[] = {NOBODY, 100};
    int p[2];
    char buf[512];

    (void)state;
    skip_unless_root();
    assert_int_equal(pipe(p), 0);
    assert_int_equal(rx__run_as(NOBODY, NOBODY, groups, 2, report_creds, &p[1], 10000), 0);
    read_report(p[0], buf, sizeof(buf));
    assert_string_equal(buf, "65534 65534 65534 65534 65534 65534 2 100 65534");
    close(p[0]);
    close(p[1]);
}

static int
return_arg(void *arg)
{
    return *(int *)arg;
}

/* fn's value is the result; one out of range is 125 (126 is "could not become the user"). */
static void
test_runas_value(void **state)
{
    int v = 7, big = 200;

    (void)state;
    skip_unless_root();
    assert_int_equal(rx__run_as(NOBODY, NOBODY, NULL, 0, return_arg, &v, 10000), 7);
    assert_int_equal(rx__run_as(NOBODY, NOBODY, NULL, 0, return_arg, &big, 10000), 125);
}

static int
open_file(void *arg)
{
    int fd = open((const char *)arg, O_RDONLY);

    if (fd >= 0) {
        close(fd);
        return 0;
    }
    return errno == EACCES ? 1 : 2;
}

/* What only root may read, the child may not. */
static void
test_runas_no_root_access(void **state)
{
    char path[] = "/tmp/rxjob-runas-XXXXXX";
    int fd;

    (void)state;
    skip_unless_root();
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, 0600), 0);
    close(fd);
    assert_int_equal(rx__run_as(NOBODY, NOBODY, NULL, 0, open_file, path, 10000), 1);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(rx__run_as(NOBODY, NOBODY, NULL, 0, open_file, path, 10000), 0);
    unlink(path);
}

static int
stop_self(void *arg)
{
    (void)arg;
    (void)kill(getpid(), SIGSTOP);
    return 0;
}

/* A child that is stopped (its user can) delays the caller by the timeout only: then it is killed
 * and reaped (no zombie left), and the caller hears ETIMEDOUT. */
static void
test_runas_stopped_child_bounded(void **state)
{
    double t0;

    (void)state;
    skip_unless_root();
    t0 = now_s();
    errno = 0;
    assert_int_equal(rx__run_as(NOBODY, NOBODY, NULL, 0, stop_self, NULL, 300), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(now_s() - t0 < 5.0);
    /* Reaped: this process has no child left. */
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/* uid 0 is refused: there would be nothing to drop. */
static void
test_runas_refuses_root(void **state)
{
    int v = 0;

    (void)state;
    errno = 0;
    assert_int_equal(rx__run_as(0, 0, NULL, 0, return_arg, &v, 1000), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(rx__run_as(NOBODY, NOBODY, NULL, 0, NULL, NULL, 1000), -1);
    assert_int_equal(errno, EINVAL);
}

/* A caller that cannot drop to the user (not root: setgroups fails): EPERM, fn never runs. */
static void
test_runas_cannot_become(void **state)
{
    int status = 0;
    pid_t pid;

    (void)state;
    skip_unless_root();
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int v = 0;

        /* An unprivileged caller: nobody. */
        if (setgroups(0, NULL) != 0 || setresgid(NOBODY, NOBODY, NOBODY) != 0 ||
            setresuid(NOBODY, NOBODY, NOBODY) != 0)
            _exit(10);
        errno = 0;
        if (rx__run_as(1, 1, NULL, 0, return_arg, &v, 10000) != -1)
            _exit(11);
        _exit(errno == EPERM ? 0 : 12);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runas_drops_everything),
        cmocka_unit_test(test_runas_groups),
        cmocka_unit_test(test_runas_value),
        cmocka_unit_test(test_runas_no_root_access),
        cmocka_unit_test(test_runas_stopped_child_bounded),
        cmocka_unit_test(test_runas_refuses_root),
        cmocka_unit_test(test_runas_cannot_become),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
