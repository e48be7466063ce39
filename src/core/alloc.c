/*
 * alloc.c - the library's one allocator, with a fault-injection seam for tests.
 *
 * Every allocation in rxjob goes through rx__malloc and friends (as Redis goes through zmalloc
 * and libuv through uv__malloc), so there is one place to count, replace or fail allocations.
 * Tests call rx__alloc_fail_after(n): the next n allocations succeed and every later one fails,
 * until rx__alloc_fail_after(-1) turns failing off. That lets a test walk every failure path of
 * a function and check it returns RX_ENOMEM and leaks nothing (beanstalkd's falloc, SQLite's
 * fault tests).
 *
 * A NULL return always means "out of memory": a request for 0 bytes is served as a request for
 * 1 byte, so callers never have to tell malloc(0)'s NULL apart from a failure. The budget is a
 * C11 atomic, so allocations on several threads each take exactly one unit of it.
 */
#include "core/internal.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Allocations left before they start failing; < 0 means never fail (the default). */
static atomic_long alloc_budget = -1;

/* 1 if this allocation must fail, consuming one unit of the budget when it succeeds. */
static int
alloc_should_fail(void)
{
    long left = atomic_load_explicit(&alloc_budget, memory_order_relaxed);

    for (;;) {
        if (left < 0)
            return 0;
        if (left == 0)
            return 1;
        /* On failure the exchange reloads `left`, and the loop decides again. */
        if (atomic_compare_exchange_weak_explicit(&alloc_budget, &left, left - 1,
                                                  memory_order_relaxed, memory_order_relaxed))
            return 0;
    }
}

void
rx__alloc_fail_after(long n)
{
    atomic_store_explicit(&alloc_budget, n < 0 ? -1 : n, memory_order_relaxed);
}

void *
rx__malloc(size_t size)
{
    if (alloc_should_fail())
        return NULL;
    return malloc(size == 0 ? 1 : size);
}

void *
rx__calloc(size_t n, size_t size)
{
    if (alloc_should_fail())
        return NULL;
    if (n == 0 || size == 0)
        return calloc(1, 1);
    /* Checked here rather than left to calloc, whose overflow report sanitizers turn fatal. */
    if (n > SIZE_MAX / size)
        return NULL;
    return calloc(n, size);
}

void *
rx__realloc(void *ptr, size_t size)
{
    /* On failure ptr stays valid and owned by the caller, as with realloc. */
    if (alloc_should_fail())
        return NULL;
    return realloc(ptr, size == 0 ? 1 : size);
}

void
rx__free(void *ptr)
{
    free(ptr);
}

char *
rx__strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    return rx__memdup(s, strlen(s));
}

void *
rx__memdup(const void *data, size_t len)
{
    unsigned char *copy;

    if (data == NULL && len > 0)
        return NULL;
    if (len == SIZE_MAX)
        return NULL; /* no room for the NUL */

    copy = rx__malloc(len + 1);
    if (copy == NULL)
        return NULL;
    if (len > 0)
        memcpy(copy, data, len);
    copy[len] = '\0';
    return copy;
}

void
rx_free(void *ptr)
{
    rx__free(ptr);
}
