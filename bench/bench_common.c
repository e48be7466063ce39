/*
 * bench_common.c - statistics and file-system names shared by the benchmarks (bench_common.h).
 */
#include "bench_common.h"

#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>

int
bench_compare_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

stats
stats_of(const double *values, size_t n)
{
    double sorted[BENCH_MAX_RUNS];
    stats st;

    if (n > BENCH_MAX_RUNS)
        n = BENCH_MAX_RUNS;
    memcpy(sorted, values, n * sizeof(*values));
    qsort(sorted, n, sizeof(*sorted), bench_compare_double);
    st.min = sorted[0];
    st.max = sorted[n - 1];
    st.median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
    return st;
}

static const struct fs_name {
    unsigned long magic;
    const char *name;
} fs_names[] = {
    {.magic = 0xef53, .name = "ext2/3/4"},    {.magic = 0x01021994, .name = "tmpfs"},
    {.magic = 0x58465342, .name = "xfs"},     {.magic = 0x9123683e, .name = "btrfs"},
    {.magic = 0x794c7630, .name = "overlay"}, {.magic = 0x6969, .name = "nfs"},
    {.magic = 0x2fc12fc1, .name = "zfs"},     {.magic = 0xf2f52010, .name = "f2fs"},
    {.magic = 0x65735546, .name = "fuse"},    {.magic = 0x858458f6, .name = "ramfs"},
};

const char *
fs_name(const char *path)
{
    struct statfs sf;

    if (statfs(path, &sf) != 0)
        return "?";
    for (size_t i = 0; i < sizeof(fs_names) / sizeof(fs_names[0]); i++) {
        if ((unsigned long)sf.f_type == fs_names[i].magic)
            return fs_names[i].name;
    }
    return "other";
}
