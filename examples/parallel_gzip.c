/*
 * parallel_gzip - gzip-compressed size of every regular file under a directory, one rxjob
 * command task per file.
 *
 *     parallel_gzip [-j WORKERS] [DIR]
 *
 * DIR (default /usr/include) is walked as parallel_checksums walks it (nftw(3), no symbolic
 * links followed, regular files only, sorted by path in byte order). Then ONE rx_exec call on a
 * local-parallel context runs, for each file, the command
 *
 *     sh -c '<script>' sh {}
 *
 * where rxjob replaces "{}" with the file's path byte for byte, so the script sees the path as
 * "$1" and no quoting of it is ever needed. The script compresses the file with `gzip -c` and
 * writes the compressed size (`wc -c`) to "$RXJOB_RESULT", the file whose contents become the
 * task's result. Debian's sh (dash) has no `set -o pipefail`, so a plain `gzip | wc -c` would
 * report gzip's failure (unreadable file) as a successful size of 0; the script therefore carries
 * gzip's exit status out of the pipeline on file descriptor 3 and exits with it.
 *
 * Output:
 * - stdout: one row per file in task order, `<compressed bytes>  <original bytes>  <path>`.
 *   The original size is the file's st_size at walk time. A path holding a backslash or a
 *   newline is escaped as sha256sum(1) does it: the row starts with '\' and the path's '\' and
 *   newline read "\\" and "\n", so every row is one line.
 * - stderr: for each failed task `ERROR  <message>  <path>` followed by its console output
 *   (gzip's own message), then one summary line:
 *       parallel_gzip: F files, X failed, C/O bytes (ratio R), S s, N files/s (W workers)
 *   where C and O total the compressed and original sizes of the files that succeeded, R = C/O,
 *   and S is the wall time of the rx_exec call (CLOCK_MONOTONIC).
 *
 * Exit status: 0 if every file was compressed, 1 if some tasks failed (the table is printed all
 * the same), 2 on a usage or setup error.
 */
#define _XOPEN_SOURCE 700 /* nftw(3) and FTW_PHYS are XSI, beyond _POSIX_C_SOURCE */

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <rxjob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WALK_MAX_FDS 64 /* directories nftw may hold open at once */

/*
 * The script each task runs, with the file's path as $1. Inside the command substitution fd 1
 * is the substitution's pipe: `exec 3>&1` keeps it as fd 3, the brace group's stdout goes to wc,
 * and only gzip's exit status ("echo $? >&3") is captured in $status. If wc itself fails the
 * substitution fails and `|| exit` exits with its status.
 */
static const char gzip_script[] = "status=$(exec 3>&1; { gzip -c -- \"$1\"; echo $? >&3; } | "
                                  "wc -c > \"$RXJOB_RESULT\") || exit; exit \"$status\"";

/* ---------------------------------------------------------------------------------------------
 * The directory walk. nftw's callback takes no user pointer, hence the file-scope list.
 * ------------------------------------------------------------------------------------------- */

struct file {
    char *path;
    uint64_t size_bytes; /* st_size at walk time */
};

static struct {
    struct file *files;
    size_t n_files;
    size_t cap;
    int err; /* errno of the failure that stopped the walk, or 0 */
} walk;

static int
walk_visit(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    char *copy;

    (void)ftw;
    if (type == FTW_DNR || type == FTW_NS) {
        /* Not fatal: report it and walk on, as find(1) does. */
        fprintf(stderr, "parallel_gzip: cannot %s '%s', skipping\n",
                type == FTW_DNR ? "read directory" : "stat", path);
        return 0;
    }
    if (type != FTW_F || !S_ISREG(sb->st_mode))
        return 0; /* directories, symbolic links, FIFOs, sockets, devices */

    if (walk.n_files == walk.cap) {
        size_t cap = walk.cap ? 2 * walk.cap : 1024;
        struct file *files = realloc(walk.files, cap * sizeof(*files));

        if (files == NULL) {
            walk.err = ENOMEM;
            return 1;
        }
        walk.files = files;
        walk.cap = cap;
    }
    copy = strdup(path);
    if (copy == NULL) {
        walk.err = ENOMEM;
        return 1;
    }
    walk.files[walk.n_files++] = (struct file){.path = copy, .size_bytes = (uint64_t)sb->st_size};
    return 0;
}

static int
compare_files(const void *a, const void *b)
{
    return strcmp(((const struct file *)a)->path, ((const struct file *)b)->path);
}

static void
walk_free(void)
{
    for (size_t i = 0; i < walk.n_files; i++)
        free(walk.files[i].path);
    free(walk.files);
    walk.files = NULL;
    walk.n_files = walk.cap = 0;
}

/* ---------------------------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------------------------- */

/* 1 if path must be escaped as sha256sum(1) does: it holds a backslash or a newline. */
static int
path_needs_escape(const char *path)
{
    return strpbrk(path, "\\\n") != NULL;
}

/* Write path to out, with '\' and newline as "\\" and "\n" when escape is set. */
static void
put_path(FILE *out, const char *path, int escape)
{
    if (!escape) {
        fputs(path, out);
        return;
    }
    for (const char *p = path; *p != '\0'; p++) {
        if (*p == '\\')
            fputs("\\\\", out);
        else if (*p == '\n')
            fputs("\\n", out);
        else
            putc(*p, out);
    }
}

/*
 * Parse what `wc -c` wrote: a decimal number, maybe with leading blanks, and a newline.
 * Returns 0, or -1 if the result is not in that shape.
 */
static int
parse_size(const char *value, size_t len, uint64_t *out_size)
{
    const char *p = value;
    unsigned long long size;
    char *end;

    while (*p == ' ' || *p == '\t')
        p++;
    if (*p < '0' || *p > '9')
        return -1;
    errno = 0;
    size = strtoull(p, &end, 10);
    if (errno != 0)
        return -1;
    if (*end == '\n')
        end++;
    if (*end != '\0' || (size_t)(end - value) != len)
        return -1;
    *out_size = size;
    return 0;
}

static double
monotonic_s(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
usage(FILE *out)
{
    fprintf(out, "usage: parallel_gzip [-j WORKERS] [DIR]\n"
                 "  gzip-compressed size of every regular file under DIR (default /usr/include),\n"
                 "  one command task per file on WORKERS processes (default 0 = online CPUs).\n");
}

/* Parse a worker count: decimal digits only, at most RX_MAX_WORKERS. Returns 0 or -1. */
static int
parse_workers(const char *text, unsigned *out_workers)
{
    unsigned long value;
    char *end;

    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    value = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || value > RX_MAX_WORKERS)
        return -1;
    *out_workers = (unsigned)value;
    return 0;
}

int
main(int argc, char **argv)
{
    static const char *const cmd_argv[] = {"sh", "-c", gzip_script, "sh", "{}", NULL};
    rx_exec_opts opts = RX_EXEC_OPTS_INIT;
    rx_work work = rx_work_command(cmd_argv);
    const char *dir = "/usr/include";
    rx_results *res = NULL;
    rx_context *ctx = NULL;
    rx_buf *args = NULL;
    unsigned workers = 0;
    uint64_t total_in = 0;
    uint64_t total_out = 0;
    size_t n_failed = 0;
    double t0, seconds;
    rx_err err;
    int status = 2;
    int opt;

    while ((opt = getopt(argc, argv, "hj:")) != -1) {
        switch (opt) {
        case 'j':
            if (parse_workers(optarg, &workers) != 0) {
                fprintf(stderr, "parallel_gzip: bad worker count '%s' (0..%u)\n", optarg,
                        RX_MAX_WORKERS);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind > 1) {
        usage(stderr);
        return 2;
    }
    if (optind < argc)
        dir = argv[optind];

    if (nftw(dir, walk_visit, WALK_MAX_FDS, FTW_PHYS) != 0) {
        fprintf(stderr, "parallel_gzip: walk '%s' failed: %s\n", dir,
                strerror(walk.err ? walk.err : errno));
        goto done;
    }
    if (walk.n_files == 0) {
        /* rx_exec without elem_args would run one task with an empty argument: do not call it. */
        fprintf(stderr, "parallel_gzip: 0 files, 0 failed, 0/0 bytes (ratio 0.000), 0.000 s, "
                        "0 files/s\n");
        status = 0;
        goto done;
    }
    qsort(walk.files, walk.n_files, sizeof(*walk.files), compare_files); /* base must not be NULL */

    args = calloc(walk.n_files, sizeof(*args));
    if (args == NULL) {
        fprintf(stderr, "parallel_gzip: out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < walk.n_files; i++)
        args[i] = (rx_buf){.data = walk.files[i].path, .len = strlen(walk.files[i].path)};

    err = rx_local_parallel_context(workers, &ctx);
    if (err != RX_OK) {
        fprintf(stderr, "parallel_gzip: rx_local_parallel_context: %s\n", rx_strerror(err));
        goto done;
    }

    opts.elem_args = args;
    opts.n_elem_args = walk.n_files;
    t0 = monotonic_s();
    err = rx_exec(ctx, &work, &opts, &res, NULL);
    seconds = monotonic_s() - t0;
    if (err != RX_OK && err != RX_EJOBFAILED) {
        fprintf(stderr, "parallel_gzip: rx_exec: %s (%s)\n", rx_strerror(err),
                rx_context_errmsg(ctx));
        goto done;
    }
    if (rx_results_count(res) != walk.n_files) {
        fprintf(stderr, "parallel_gzip: rx_exec returned %zu results for %zu files\n",
                rx_results_count(res), walk.n_files);
        goto done;
    }

    for (size_t i = 0; i < walk.n_files; i++) {
        const struct file *f = &walk.files[i];
        int escape = path_needs_escape(f->path);
        size_t len = 0;
        const char *value =
            rx_results_state(res, i) == RX_TASK_OK ? rx_results_value(res, i, &len) : NULL;
        uint64_t size;

        if (value != NULL && parse_size(value, len, &size) == 0) {
            printf("%s%" PRIu64 "  %" PRIu64 "  ", escape ? "\\" : "", size, f->size_bytes);
            put_path(stdout, f->path, escape);
            putchar('\n');
            total_out += size;
            total_in += f->size_bytes;
        } else {
            const char *msg = rx_results_error(res, i);

            if (msg == NULL)
                msg = value != NULL ? "malformed result"
                                    : rx_task_state_name(rx_results_state(res, i));
            fprintf(stderr, "ERROR  %s  ", msg);
            put_path(stderr, f->path, escape);
            putc('\n', stderr);
            if (rx_results_write_output(res, i, stderr) != RX_OK)
                fprintf(stderr, "parallel_gzip: cannot read the output of task %zu\n", i);
            n_failed++;
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "parallel_gzip: write to stdout failed\n");
        goto done;
    }

    fprintf(stderr,
            "parallel_gzip: %zu files, %zu failed, %" PRIu64 "/%" PRIu64
            " bytes (ratio %.3f), %.3f s, %.0f files/s (%u workers)\n",
            walk.n_files, n_failed, total_out, total_in,
            total_in > 0 ? (double)total_out / (double)total_in : 0.0, seconds,
            seconds > 0 ? (double)walk.n_files / seconds : 0.0, rx_context_workers(ctx));
    status = n_failed == 0 && err == RX_OK ? 0 : 1;

done:
    rx_results_free(res);
    rx_context_free(ctx);
    free(args);
    walk_free();
    return status;
}
