/*
 * bench_common.h - what every benchmark under bench/ shares: the median/min/max of a row's runs,
 * and the name of the file system a path is on (printed in each report's header).
 */
#ifndef RX_BENCH_COMMON_H
#define RX_BENCH_COMMON_H

#include <stddef.h>

/* The most runs one row may have. */
#define BENCH_MAX_RUNS 64

typedef struct stats {
    double median;
    double min;
    double max;
} stats;

/* qsort comparison of doubles, ascending. */
int bench_compare_double(const void *a, const void *b);

/* Median, min and max of 1 <= n <= BENCH_MAX_RUNS values (one per run); values is not changed. */
stats stats_of(const double *values, size_t n);

/* The file system path is on: "ext2/3/4", "tmpfs", ..., "other", or "?" if statfs failed. */
const char *fs_name(const char *path);

#endif
