/*
 * test_auth.c - who calls over TCP: the token file and bearer tokens (src/server/auth.c), the
 * --listen address (src/server/tcp.c), and the client's side of it: the urls, tokens and token
 * files rx__http_open takes or refuses (src/client/http_client.c). The daemon and the wire are
 * tests/check_tcp.sh's.
 */
#define _GNU_SOURCE /* setenv, unsetenv, mkdtemp */

#include "client/http_client.h"
#include "core/internal.h"
#include "server/auth.h"
#include "server/tcp.h"

#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
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

#define TOKEN_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa="  /* 43 + '=' */
#define TOKEN_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"  /* 44 */
#define TOKEN_C "A-._~+/0123456789abcdefghijklmnopqrstuvwxyz==" /* every class */

/* ---------------------------------------------------------------------------------------- */
/* The token file's text                                                                       */
/* ---------------------------------------------------------------------------------------- */

struct parse_case {
    const char *text;
    uid_t daemon_uid;
    rx_err want;
    size_t want_n;        /* tokens, when RX_OK */
    const char *want_why; /* a piece of the reason, when not RX_OK */
};

static const struct parse_case parse_cases[] = {
    {TOKEN_A " 0\n", 0, RX_OK, 1, NULL},
    {"# comment\n\n   \t\n" TOKEN_A " root\r\n" TOKEN_B "\t 1 \n", 0, RX_OK, 2, NULL},
    {TOKEN_C " 0", 0, RX_OK, 1, NULL}, /* no final newline */
    {"  " TOKEN_A " 0\n", 0, RX_OK, 1, NULL},
    {"", 0, RX_EINVAL, 0, "no token"},
    {"# only a comment\n", 0, RX_EINVAL, 0, "no token"},
    {"short 0\n", 0, RX_EINVAL, 0, "line 1: the token is not 32 to 512"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 0\n", 0, RX_EINVAL, 0, "line 1: the token"}, /* 31 */
    {"aaaaaaaaaaaaaaaa!aaaaaaaaaaaaaaaaaaaaaa 0\n", 0, RX_EINVAL, 0, "line 1: the token"},
    {"=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 0\n", 0, RX_EINVAL, 0, "line 1: the token"},
    {"aaaaaaaaaaaaaaaaaaaa=aaaaaaaaaaaaaaaaaaaa 0\n", 0, RX_EINVAL, 0, "line 1: the token"},
    {"\n" TOKEN_A "\n", 0, RX_EINVAL, 0, "line 2: not \"TOKEN USER\""},
    {TOKEN_A " 0 extra\n", 0, RX_EINVAL, 0, "line 1: not \"TOKEN USER\""},
    {TOKEN_A " 0\n" TOKEN_A " 1\n", 0, RX_EINVAL, 0, "line 2: the same token"},
    {TOKEN_A " no-such-user-rxjob\n", 0, RX_EINVAL, 0, "line 1: no user 'no-such-user-rxjob'"},
    {TOKEN_A " 12x\n", 0, RX_EINVAL, 0, "line 1: user '12x' is not a uid"},
    {TOKEN_A " 4294967295\n", 0, RX_EINVAL, 0, "is not a uid"}, /* (uid_t)-1 */
    /* A daemon not run as root serves its own user only. */
    {TOKEN_A " 1000\n", 1000, RX_OK, 1, NULL},
    {TOKEN_A " 1000\n" TOKEN_B " 0\n", 1000, RX_EINVAL, 0,
     "line 2: user '0' (uid 0) is not the daemon's user (uid 1000)"},
};

static void
test_auth_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(parse_cases); i++) {
        const struct parse_case *tc = &parse_cases[i];
        auth_tokens *t = NULL;
        char why[512] = "";
        rx_err err =
            auth_tokens_parse(tc->text, strlen(tc->text), tc->daemon_uid, &t, why, sizeof(why));

        if (err != tc->want)
            fail_msg("case %zu: got %s (%s), want %s", i, rx_errname(err), why,
                     rx_errname(tc->want));
        if (tc->want == RX_OK) {
            assert_int_equal(auth_tokens_count(t), tc->want_n);
        } else {
            assert_null(t);
            if (strstr(why, tc->want_why) == NULL)
                fail_msg("case %zu: reason '%s' lacks '%s'", i, why, tc->want_why);
        }
        auth_tokens_free(t);
    }
}

/* A user name resolves through the password database; "root" is uid 0 everywhere. */
static void
test_auth_parse_user_names(void **state)
{
    const char text[] = TOKEN_A " root\n" TOKEN_B " nobody\n";
    struct passwd *nobody = getpwnam("nobody");
    auth_tokens *t = NULL;
    char why[512] = "";
    uid_t uid = 12345;

    (void)state;
    if (nobody == NULL)
        skip();
    assert_int_equal(auth_tokens_parse(text, strlen(text), 0, &t, why, sizeof(why)), RX_OK);
    assert_int_equal(auth_check(t, "Bearer " TOKEN_A, &uid), AUTH_OK);
    assert_int_equal(uid, 0);
    assert_int_equal(auth_check(t, "Bearer " TOKEN_B, &uid), AUTH_OK);
    assert_int_equal(uid, nobody->pw_uid);
    assert_int_equal(auth_tokens_count_others(t, 0), 1);
    assert_int_equal(auth_tokens_count_others(t, nobody->pw_uid), 1);
    assert_int_equal(auth_tokens_count_others(t, 4242), 2);
    auth_tokens_free(t);
}

/* ---------------------------------------------------------------------------------------- */
/* Checking a request's header                                                                 */
/* ---------------------------------------------------------------------------------------- */

struct check_case {
    const char *header; /* NULL: none */
    auth_result want;
    uid_t want_uid;
};

static const struct check_case check_cases[] = {
    {NULL, AUTH_MISSING, 0},
    {"", AUTH_MALFORMED, 0},
    {"Bearer", AUTH_MALFORMED, 0},
    {"Bearer ", AUTH_MALFORMED, 0},
    {"Basic " TOKEN_A, AUTH_MALFORMED, 0},
    {"Bearer:" TOKEN_A, AUTH_MALFORMED, 0},
    {"Bearer " TOKEN_A "x", AUTH_MALFORMED, 0}, /* '=' only at the end */
    {"Bearer " TOKEN_A " extra", AUTH_MALFORMED, 0},
    {"Bearer short", AUTH_MALFORMED, 0},
    {"Bearer " TOKEN_A, AUTH_OK, 10},
    {"bearer " TOKEN_A, AUTH_OK, 10}, /* the scheme is case-insensitive (RFC 7235) */
    {"BEARER    " TOKEN_B "  ", AUTH_OK, 20},
    {"Bearer " TOKEN_C, AUTH_OK, 0},
    /* Well-formed, unknown: one byte off, a prefix, a longer one. */
    {"Bearer aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab=", AUTH_UNKNOWN, 0},
    {"Bearer aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", AUTH_UNKNOWN, 0},
    {"Bearer " TOKEN_B "b", AUTH_UNKNOWN, 0},
};

static void
test_auth_check_table(void **state)
{
    const char text[] = TOKEN_A " 10\n" TOKEN_B " 20\n" TOKEN_C " 0\n";
    auth_tokens *t = NULL;
    char why[512] = "";

    (void)state;
    assert_int_equal(auth_tokens_parse(text, strlen(text), 0, &t, why, sizeof(why)), RX_OK);
    for (size_t i = 0; i < RX__ARRAY_LEN(check_cases); i++) {
        const struct check_case *tc = &check_cases[i];
        uid_t uid = 4242;
        auth_result r = auth_check(t, tc->header, &uid);

        if (r != tc->want)
            fail_msg("case %zu '%s': got %d, want %d", i, tc->header ? tc->header : "(none)",
                     (int)r, (int)tc->want);
        assert_int_equal(uid, r == AUTH_OK ? tc->want_uid : 4242); /* untouched on failure */
    }
    auth_tokens_free(t);
}

/* ---------------------------------------------------------------------------------------- */
/* The token file on disk                                                                      */
/* ---------------------------------------------------------------------------------------- */

static char tmp_dir[PATH_MAX];

static int
tmp_setup(void **state)
{
    (void)state;
    (void)snprintf(tmp_dir, sizeof(tmp_dir), "%s/rxjob-test-auth.XXXXXX",
                   getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(tmp_dir) != NULL ? 0 : -1;
}

static int
env_teardown(void **state)
{
    (void)state;
    (void)unsetenv("RXJOB_TOKEN");
    (void)unsetenv("RXJOB_TOKEN_FILE");
    (void)unsetenv("RXJOB_CA_FILE");
    return 0;
}

static int
tmp_teardown(void **state)
{
    char cmd[PATH_MAX + 16];

    (void)env_teardown(state);
    (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
    int fd;

    (void)unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(close(fd), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void
test_auth_load_file_rules(void **state)
{
    char path[PATH_MAX + 32], link[PATH_MAX + 32];
    char why[1024] = "";
    auth_tokens *t = NULL;

    (void)state;
    (void)snprintf(path, sizeof(path), "%s/tokens", tmp_dir);
    (void)snprintf(link, sizeof(link), "%s/link", tmp_dir);
    write_file(path, TOKEN_A " 0\n", 0600);
    assert_int_equal(auth_tokens_load(path, geteuid(), &t, why, sizeof(why)),
                     geteuid() == 0 ? RX_OK : RX_EINVAL); /* uid 0 is not ours unless root */
    auth_tokens_free(t);
    t = NULL;

    /* Open to group or others, in any way: refused, as ssh refuses such a key. */
    static const mode_t loose[] = {0640, 0604, 0620, 0602, 0610, 0601, 0644};
    for (size_t i = 0; i < RX__ARRAY_LEN(loose); i++) {
        assert_int_equal(chmod(path, loose[i]), 0);
        why[0] = '\0';
        assert_int_equal(auth_tokens_load(path, geteuid(), &t, why, sizeof(why)), RX_EPERM);
        assert_null(t);
        assert_non_null(strstr(why, "open to group or others"));
        assert_non_null(strstr(why, "chmod 600"));
    }
    assert_int_equal(chmod(path, 0600), 0);

    /* Not the daemon's. */
    assert_int_equal(auth_tokens_load(path, geteuid() + 1, &t, why, sizeof(why)), RX_EPERM);
    assert_non_null(strstr(why, "not to the daemon's user"));

    /* A symbolic link is not followed; a missing file says so. */
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(auth_tokens_load(link, geteuid(), &t, why, sizeof(why)), RX_EIO);
    assert_non_null(strstr(why, "symbolic link"));
    assert_int_equal(auth_tokens_load("/nonexistent/rxjob-tokens", geteuid(), &t, why, sizeof(why)),
                     RX_EIO);
    assert_non_null(strstr(why, "No such file"));
    assert_null(t);
}

/* ---------------------------------------------------------------------------------------- */
/* --listen                                                                                    */
/* ---------------------------------------------------------------------------------------- */

struct listen_case {
    const char *spec;
    rx_err want;
    int is_loopback;
    int port;
    const char *url; /* tcp_url with tls */
};

static const struct listen_case listen_cases[] = {
    {"127.0.0.1:8443", RX_OK, 1, 8443, "https://127.0.0.1:8443"},
    {"127.9.8.7:0", RX_OK, 1, 0, "https://127.9.8.7:0"},
    {"0.0.0.0:1", RX_OK, 0, 1, "https://0.0.0.0:1"},
    {"192.168.1.2:65535", RX_OK, 0, 65535, "https://192.168.1.2:65535"},
    {"[::1]:8443", RX_OK, 1, 8443, "https://[::1]:8443"},
    {"[0:0::1]:8443", RX_OK, 1, 8443, "https://[::1]:8443"},
    {"[::]:8443", RX_OK, 0, 8443, "https://[::]:8443"},
    {"[::ffff:127.0.0.1]:1", RX_OK, 1, 1, "https://[::ffff:127.0.0.1]:1"},
    {"[::ffff:10.0.0.1]:1", RX_OK, 0, 1, "https://[::ffff:10.0.0.1]:1"},
    {"", RX_EINVAL, 0, 0, NULL},
    {"127.0.0.1", RX_EINVAL, 0, 0, NULL},
    {"127.0.0.1:", RX_EINVAL, 0, 0, NULL},
    {"127.0.0.1:65536", RX_EINVAL, 0, 0, NULL},
    {"127.0.0.1:+80", RX_EINVAL, 0, 0, NULL},
    {"127.0.0.1:-1", RX_EINVAL, 0, 0, NULL},
    {"127.0.0.1:80x", RX_EINVAL, 0, 0, NULL},
    {"localhost:80", RX_EINVAL, 0, 0, NULL}, /* names are not looked up */
    {"127.1:80", RX_EINVAL, 0, 0, NULL},     /* inet_pton takes dotted quads only */
    {"::1:80", RX_EINVAL, 0, 0, NULL},       /* IPv6 goes in brackets */
    {"[::1]80", RX_EINVAL, 0, 0, NULL},
    {"[::1:80", RX_EINVAL, 0, 0, NULL},
    {"[]:80", RX_EINVAL, 0, 0, NULL},
    {"[127.0.0.1]:80", RX_EINVAL, 0, 0, NULL},
    {"[fe80::1%eth0]:80", RX_EINVAL, 0, 0, NULL},
};

static void
test_tcp_parse_listen_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < RX__ARRAY_LEN(listen_cases); i++) {
        const struct listen_case *tc = &listen_cases[i];
        tcp_addr a;
        char why[512] = "";
        char url[TCP_URL_LEN];
        rx_err err;

        memset(&a, 0x55, sizeof(a));
        err = tcp_parse_listen(tc->spec, &a, why, sizeof(why));
        if (err != tc->want)
            fail_msg("case %zu '%s': got %s (%s)", i, tc->spec, rx_errname(err), why);
        if (err != RX_OK) {
            assert_true(why[0] != '\0');
            continue;
        }
        assert_int_equal(a.is_loopback, tc->is_loopback);
        assert_int_equal(a.port, tc->port);
        tcp_url(&a, 1, url, sizeof(url));
        assert_string_equal(url, tc->url);
    }
}

/* Port 0 is replaced with the one the kernel chose, and the socket listens there. */
static void
test_tcp_listen_port_zero(void **state)
{
    tcp_addr a;
    char why[512] = "";
    int fd = -1;

    (void)state;
    assert_int_equal(tcp_parse_listen("127.0.0.1:0", &a, why, sizeof(why)), RX_OK);
    assert_int_equal(tcp_listen(&a, &fd, why, sizeof(why)), RX_OK);
    assert_true(a.port > 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(close(fd), 0);
}

/* ---------------------------------------------------------------------------------------- */
/* The client: rx__http_open                                                                   */
/* ---------------------------------------------------------------------------------------- */

struct open_case {
    const char *url;
    const char *token; /* $RXJOB_TOKEN; NULL = unset */
    rx_err want;
    const char *want_why;
};

static const struct open_case open_cases[] = {
    {"https://127.0.0.1:8443", TOKEN_A, RX_OK, NULL},
    {"https://127.0.0.1:8443/", TOKEN_A, RX_OK, NULL},
    {"https://[::1]:8443", TOKEN_A, RX_OK, NULL},
    {"https://rx.example:1", TOKEN_B, RX_OK, NULL},
    {"unix:/tmp/x.sock", NULL, RX_OK, NULL}, /* no token needed on a socket */
    {"https://127.0.0.1:8443", NULL, RX_EPERM, "needs a token"},
    {"https://127.0.0.1:8443", "", RX_EPERM, "needs a token"},
    {"https://127.0.0.1:8443", "short", RX_EPERM, "RXJOB_TOKEN is not a token (5 characters)"},
    /* Nothing that could end the header line and start another. */
    {"https://127.0.0.1:8443", TOKEN_A "\r\nX-Evil: 1", RX_EPERM,
     "RXJOB_TOKEN is not a token (a character that is not allowed there)"},
    {"https://127.0.0.1:8443", TOKEN_A " x", RX_EPERM, "RXJOB_TOKEN is not a token"},
    {"http://127.0.0.1:8443", TOKEN_A, RX_EINVAL, "plain http:// is never used"},
    {"HTTPS://127.0.0.1:8443", TOKEN_A, RX_EINVAL, "not unix:"},
    {"tcp://127.0.0.1:8443", TOKEN_A, RX_EINVAL, "not unix:"},
    {"unix:", NULL, RX_EINVAL, "no socket path"},
    {"https://127.0.0.1", TOKEN_A, RX_EINVAL, "not https://HOST:PORT"},
    {"https://127.0.0.1:", TOKEN_A, RX_EINVAL, "not https://HOST:PORT"},
    {"https://127.0.0.1:0", TOKEN_A, RX_EINVAL, "not https://HOST:PORT"},
    {"https://127.0.0.1:65536", TOKEN_A, RX_EINVAL, "not https://HOST:PORT"},
    {"https://127.0.0.1:+1", TOKEN_A, RX_EINVAL, "not https://HOST:PORT"},
    {"https://:8443", TOKEN_A, RX_EINVAL, "not https://HOST:PORT"},
    {"https://::1:8443", TOKEN_A, RX_EINVAL, "not https://HOST:PORT"},
    {"https://127.0.0.1:8443/v1", TOKEN_A, RX_EINVAL, "no user, path or query"},
    {"https://127.0.0.1:8443?x=1", TOKEN_A, RX_EINVAL, "no user, path or query"},
    {"https://me@127.0.0.1:8443", TOKEN_A, RX_EINVAL, "no user, path or query"},
    {"https://127.0.0.1 :8443", TOKEN_A, RX_EINVAL, "no user, path or query"},
};

static void
test_http_open_table(void **state)
{
    (void)state;
    (void)unsetenv("RXJOB_TOKEN_FILE");
    for (size_t i = 0; i < RX__ARRAY_LEN(open_cases); i++) {
        const struct open_case *tc = &open_cases[i];
        rx__http *http = NULL;
        char why[512] = "";
        rx_err err;

        if (tc->token != NULL)
            assert_int_equal(setenv("RXJOB_TOKEN", tc->token, 1), 0);
        else
            assert_int_equal(unsetenv("RXJOB_TOKEN"), 0);
        err = rx__http_open(tc->url, &http, why, sizeof(why));
        if (err != tc->want)
            fail_msg("case %zu '%s': got %s (%s), want %s", i, tc->url, rx_errname(err), why,
                     rx_errname(tc->want));
        if (err == RX_OK) {
            assert_non_null(http);
            if (strncmp(tc->url, "https://", 8) == 0) {
                assert_null(rx__http_socket(http));
                assert_int_equal(rx__http_where(http)[strlen(rx__http_where(http)) - 1] != '/', 1);
            } else {
                assert_string_equal(rx__http_socket(http), tc->url + 5);
            }
        } else {
            assert_null(http);
            if (strstr(why, tc->want_why) == NULL)
                fail_msg("case %zu '%s': reason '%s' lacks '%s'", i, tc->url, why, tc->want_why);
        }
        rx__http_free(http);
    }
}

/* $RXJOB_TOKEN_FILE: its first line, from a file that is the caller's and closed to others. */
static void
test_http_open_token_file(void **state)
{
    char path[PATH_MAX + 32];
    char why[1024] = "";
    rx__http *http = NULL;

    (void)state;
    (void)unsetenv("RXJOB_TOKEN");
    (void)snprintf(path, sizeof(path), "%s/token", tmp_dir);
    write_file(path, TOKEN_B "\nsecond line ignored\n", 0600);
    assert_int_equal(setenv("RXJOB_TOKEN_FILE", path, 1), 0);
    assert_int_equal(rx__http_open("https://127.0.0.1:8443", &http, why, sizeof(why)), RX_OK);
    rx__http_free(http);
    http = NULL;

    /* Without a final newline too, and RXJOB_TOKEN wins over the file. */
    write_file(path, TOKEN_B, 0400);
    assert_int_equal(rx__http_open("https://127.0.0.1:8443", &http, why, sizeof(why)), RX_OK);
    rx__http_free(http);
    http = NULL;
    write_file(path, "not a token\n", 0600);
    assert_int_equal(setenv("RXJOB_TOKEN", TOKEN_A, 1), 0);
    assert_int_equal(rx__http_open("https://127.0.0.1:8443", &http, why, sizeof(why)), RX_OK);
    rx__http_free(http);
    http = NULL;
    assert_int_equal(unsetenv("RXJOB_TOKEN"), 0);
    assert_int_equal(rx__http_open("https://127.0.0.1:8443", &http, why, sizeof(why)), RX_EPERM);
    assert_non_null(strstr(why, "RXJOB_TOKEN_FILE '"));
    assert_non_null(strstr(why, path));
    assert_non_null(strstr(why,
                           "': its first line is not a token (11 characters): a token is 32 to 512 "
                           "characters"));

    /* Each malformed file says what is wrong with it, naming the file. */
    write_file(path, "", 0600);
    assert_int_equal(rx__http_open("https://127.0.0.1:8443", &http, why, sizeof(why)), RX_EPERM);
    assert_non_null(strstr(why, "' is empty: its first line must be the token"));
    write_file(path, "\n" TOKEN_B "\n", 0600);
    assert_int_equal(rx__http_open("https://127.0.0.1:8443", &http, why, sizeof(why)), RX_EPERM);
    assert_non_null(strstr(why, "its first line is not a token (it is empty)"));
    write_file(path, "abc\n", 0600);
    assert_int_equal(rx__http_open("https://127.0.0.1:8443", &http, why, sizeof(why)), RX_EPERM);
    assert_non_null(strstr(why, "its first line is not a token (3 characters)"));
    write_file(path, TOKEN_B " junk\n", 0600);
    assert_int_equal(rx__http_open("https://127.0.0.1:8443", &http, why, sizeof(why)), RX_EPERM);
    assert_non_null(strstr(why, "its first line is not a token (a character that is not allowed"));
    assert_int_equal(setenv("RXJOB_TOKEN_FILE", tmp_dir, 1), 0);
    assert_int_equal(rx__http_open("https://127.0.0.1:8443", &http, why, sizeof(why)), RX_EIO);
    assert_non_null(strstr(why, "' is a directory, not a file holding the token"));
    assert_int_equal(setenv("RXJOB_TOKEN_FILE", path, 1), 0);

    /* Open to group or others: refused, with the mode and the fix in the message. */
    write_file(path, TOKEN_B "\n", 0644);
    assert_int_equal(rx__http_open("https://127.0.0.1:8443", &http, why, sizeof(why)), RX_EPERM);
    assert_null(http);
    assert_non_null(strstr(why, "mode 0644"));
    assert_non_null(strstr(why, "chmod 600"));
    write_file(path, TOKEN_B "\n", 0640);
    assert_int_equal(rx__http_open("https://127.0.0.1:8443", &http, why, sizeof(why)), RX_EPERM);

    /* Missing: RX_EIO, naming the file. */
    assert_int_equal(setenv("RXJOB_TOKEN_FILE", "/nonexistent/rxjob-token", 1), 0);
    assert_int_equal(rx__http_open("https://127.0.0.1:8443", &http, why, sizeof(why)), RX_EIO);
    assert_non_null(strstr(why, "RXJOB_TOKEN_FILE '/nonexistent/rxjob-token': cannot open it: "));
    assert_null(http);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_parse_table),
        cmocka_unit_test(test_auth_parse_user_names),
        cmocka_unit_test(test_auth_check_table),
        cmocka_unit_test_setup_teardown(test_auth_load_file_rules, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_tcp_parse_listen_table),
        cmocka_unit_test(test_tcp_listen_port_zero),
        cmocka_unit_test_teardown(test_http_open_table, env_teardown),
        cmocka_unit_test_setup_teardown(test_http_open_token_file, tmp_setup, tmp_teardown),
    };

    (void)env_teardown(NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
