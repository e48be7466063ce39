/*
 * internal.h - helpers shared across the library's files (rx__ prefix, never in rxjob.h).
 *
 * All allocation goes through rx__malloc and friends, so tests can fail the Nth allocation on
 * purpose (rx__alloc_fail_after) and check that every failure path returns RX_ENOMEM and leaks
 * nothing.
 */
#ifndef RX_CORE_INTERNAL_H
#define RX_CORE_INTERNAL_H

#include "rxjob.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define RX__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

void *rx__malloc(size_t size);
void *rx__calloc(size_t n, size_t size);
void *rx__realloc(void *ptr, size_t size);
void rx__free(void *ptr);
char *rx__strdup(const char *s);
void *rx__memdup(const void *data, size_t len); /* adds a NUL after the copy */

/* Test seam: the next n allocations succeed, then every one fails; n < 0 turns failing off. */
RX_API void rx__alloc_fail_after(long n);

/* Milliseconds of CLOCK_MONOTONIC: for timers and time limits, never for timestamps. */
int64_t rx__now_ms(void);

/* Log through the sink installed with rx_set_log; a no-op when there is none. */
void rx__log(rx_log_level level, const char *fmt, ...) RX_PRINTF(2, 3);

/* Checked number parser: the whole string must be a decimal integer in [min, max]. */
rx_err rx__parse_i64(const char *s, int64_t min, int64_t max, int64_t *out_value);

/* A 4-byte little-endian length, as the daemon and its supervisors put them on fd 3. */
static inline void
rx__le32_put(char *p, uint32_t v)
{
    p[0] = (char)(v & 0xff);
    p[1] = (char)((v >> 8) & 0xff);
    p[2] = (char)((v >> 16) & 0xff);
    p[3] = (char)((v >> 24) & 0xff);
}

static inline uint32_t
rx__le32_get(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Create path afresh for writing (mode 0600, close-on-exec): whatever is there (a FIFO would
 * block open(2), a symbolic link is not followed) is removed, and O_EXCL refuses anything that
 * appears meanwhile. Tried first without the unlink, which the common case (nothing there) does
 * not need: an unlink takes the directory's lock for writing even when it finds nothing, and
 * the tasks of a chunk create their files in one directory. fd, or -1 with errno. */
int rx__create_fresh(const char *path);

/* Read from fd into buf until end of file or cap bytes, retrying on EINTR; on a non-blocking fd,
 * also until nothing more is there now (EAGAIN: what was there is the answer). The bytes read,
 * or -1 with errno from read(2). */
long rx__read_full(int fd, void *buf, size_t cap);

#endif
