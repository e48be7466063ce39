/*
 * error.c - error codes, the version string, and two small helpers every module needs: the one
 * checked number parser (rx__parse_i64; atoi and friends are banned) and the monotonic clock.
 *
 * rx_strerror and rx_errname are generated from RX_ERR_MAP in rxjob.h, so a code cannot have a
 * name without a message or the other way round (libuv's UV_ERRNO_MAP). A code outside the map
 * still gets a string, never NULL, so callers can print whatever they were handed.
 */
#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define RX__STR(x)  #x
#define RX__XSTR(x) RX__STR(x)

const char *
rx_version(void)
{
    return RX__XSTR(RX_VERSION_MAJOR) "." RX__XSTR(RX_VERSION_MINOR) "." RX__XSTR(RX_VERSION_PATCH);
}

const char *
rx_strerror(rx_err err)
{
    switch (err) {
#define RX_ERR_STRERROR(name, code, msg) \
    case RX_##name:                      \
        return msg;
        RX_ERR_MAP(RX_ERR_STRERROR)
#undef RX_ERR_STRERROR
    }
    return "unknown error";
}

const char *
rx_errname(rx_err err)
{
    switch (err) {
#define RX_ERR_NAME(name, code, msg) \
    case RX_##name:                  \
        return "RX_" #name;
        RX_ERR_MAP(RX_ERR_NAME)
#undef RX_ERR_NAME
    }
    return "RX_EUNKNOWN";
}

/* 1 for the ASCII decimal digits only; isdigit would depend on the locale. */
static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

rx_err
rx__parse_i64(const char *s, int64_t min, int64_t max, int64_t *out_value)
{
    const char *digits;
    char *end = NULL;
    long long value;

    if (s == NULL || out_value == NULL || min > max)
        return RX_EINVAL;

    /*
     * strtoll would skip leading white space and accept "0x" only with base 0; checking the
     * shape first makes "the whole string is a decimal integer" exact: an optional sign, then
     * at least one digit.
     */
    digits = (s[0] == '+' || s[0] == '-') ? s + 1 : s;
    if (!is_digit(digits[0]))
        return RX_EINVAL;

    errno = 0;
    value = strtoll(s, &end, 10);
    if (errno != 0)
        return RX_EINVAL; /* ERANGE: out of int64_t, and strtoll clamped the value */
    if (end == s || *end != '\0')
        return RX_EINVAL; /* trailing junk, such as "5x" or "5 " */
    if (value < min || value > max)
        return RX_EINVAL;

    *out_value = (int64_t)value;
    return RX_OK;
}

int64_t
rx__now_ms(void)
{
    struct timespec ts;

    /* CLOCK_MONOTONIC cannot fail on Linux; 0 keeps the contract (a number) if it ever did. */
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + (int64_t)(ts.tv_nsec / 1000000);
}

long
rx__read_full(int fd, void *buf, size_t cap)
{
    size_t len = 0;

    while (len < cap) {
        ssize_t got = read(fd, (char *)buf + len, cap - len);

        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (got < 0)
            return -1;
        if (got == 0)
            break;
        len += (size_t)got;
    }
    return (long)len;
}

int
rx__create_fresh(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd >= 0 || errno != EEXIST)
        return fd;
    (void)unlink(path);
    return open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
}
