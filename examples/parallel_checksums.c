/*
 * parallel_checksums - SHA-256, line count and size of every regular file under a directory,
 * one rxjob task per file.
 *
 *     parallel_checksums [-j WORKERS] [DIR]
 *
 * DIR (default /usr/include) is walked with nftw(3) without following symbolic links; only
 * regular files are kept, sorted by path (strcmp, i.e. byte order, as `LC_ALL=C sort`), so the
 * table is stable from run to run. Then ONE rx_exec call on a local-parallel context with
 * WORKERS processes (0, the default, = online CPUs) runs one task per file: the task streams the
 * file in 64 KiB reads through OpenSSL 3's EVP SHA-256, counts its '\n' bytes, and sets its
 * result to the text "<64 hex sha> <lines> <bytes>".
 *
 * Output:
 * - stdout: the table, one row per file in task (= sorted path) order:
 *       <sha256>  <lines>  <bytes>  <path>
 *   A path containing a backslash or a newline is written as sha256sum(1) writes it: the row
 *   starts with '\', and the path's '\' and newline are written as "\\" and "\n". Every row is
 *   thus one line, and `sha256sum` output can be compared with it directly.
 * - stderr: one line per failed task, `ERROR  <message>  <path>` (path escaped the same way),
 *   then one summary line (on stderr so that stdout is only the table):
 *       parallel_checksums: F files, X failed, B bytes, S s, R files/s (W workers)
 *   S is the wall time of the rx_exec call alone (CLOCK_MONOTONIC), without the directory walk.
 *
 * Exit status: 0 if every file was read, 1 if some tasks failed (the table is printed all the
 * same), 2 on a usage or setup error.
 */
#define _XOPEN_SOURCE 700 /* nftw(3) and FTW_PHYS are XSI, beyond _POSIX_C_SOURCE */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <rxjob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK_BYTES ((size_t)64 * 1024)
#define SHA256_HEX_LEN   64
#define WALK_MAX_FDS     64 /* directories nftw may hold open at once */

/* ---------------------------------------------------------------------------------------------
 * The task: hash one file.
 * ------------------------------------------------------------------------------------------- */

/*
 * The SHA-256 implementation, fetched once by main before rx_exec so that forked workers inherit
 * it instead of each doing an implicit fetch per EVP_DigestInit_ex (OpenSSL 3's slow path). A
 * task that finds it NULL (run by some other process) fetches it for itself.
 */
static EVP_MD *sha256_md;

static int
hash_file(rx_task *task)
{
    const char *path = rx_task_arg(task, NULL);
    unsigned char buf[READ_CHUNK_BYTES];
    unsigned char digest[EVP_MAX_MD_SIZE];
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    char result[sizeof(hex) + 2 * (1 + 20)]; /* hex, then twice ' ' and up to 20 digits */
    unsigned int digest_len = 0;
    EVP_MD_CTX *md_ctx = NULL;
    uint64_t lines = 0;
    uint64_t bytes = 0;
    struct stat st;
    int fd = -1;
    int rc = -1;

    if (sha256_md == NULL) {
        sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
        if (sha256_md == NULL)
            return rx_task_fail(task, "sha256: EVP_MD_fetch failed");
    }

    /*
     * O_NOFOLLOW and O_NONBLOCK guard against the file having been replaced by a symbolic link
     * or a FIFO since the walk: the first fails, the second does not block and fails the
     * S_ISREG check below. O_NONBLOCK has no effect on reads of a regular file.
     */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return rx_task_fail(task, "open: %s", strerror(errno));
    if (fstat(fd, &st) != 0) {
        rx_task_fail(task, "fstat: %s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rx_task_fail(task, "not a regular file any more");
        goto out;
    }

    md_ctx = EVP_MD_CTX_new();
    if (md_ctx == NULL || EVP_DigestInit_ex(md_ctx, sha256_md, NULL) != 1) {
        rx_task_fail(task, "sha256: EVP_DigestInit_ex failed");
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        const unsigned char *p = buf;
        const unsigned char *end;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            rx_task_fail(task, "read: %s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        end = buf + n;
        for (;;) {
            p = memchr(p, '\n', (size_t)(end - p));
            if (p == NULL)
                break;
            lines++;
            p++;
        }
        bytes += (uint64_t)n;
        if (EVP_DigestUpdate(md_ctx, buf, (size_t)n) != 1) {
            rx_task_fail(task, "sha256: EVP_DigestUpdate failed");
            goto out;
        }
    }
    if (EVP_DigestFinal_ex(md_ctx, digest, &digest_len) != 1 || digest_len * 2 != SHA256_HEX_LEN) {
        rx_task_fail(task, "sha256: EVP_DigestFinal_ex failed");
        goto out;
    }

    for (unsigned int i = 0; i < digest_len; i++) {
        static const char hexdigits[] = "0123456789abcdef";

        hex[2 * i] = hexdigits[digest[i] >> 4];
        hex[2 * i + 1] = hexdigits[digest[i] & 0xf];
    }
    hex[2 * digest_len] = '\0';

    (void)snprintf(result, sizeof(result), "%s %" PRIu64 " %" PRIu64, hex, lines, bytes);
    if (rx_task_set_result_str(task, result) != RX_OK) {
        rx_task_fail(task, "rx_task_set_result_str failed");
        goto out;
    }
    rc = 0;

out:
    EVP_MD_CTX_free(md_ctx); /* NULL is a no-op */
    if (close(fd) != 0 && rc == 0)
        rc = rx_task_fail(task, "close: %s", strerror(errno));
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * The directory walk. nftw's callback takes no user pointer, hence the file-scope list.
 * ------------------------------------------------------------------------------------------- */

static struct {
    char **paths;
    size_t n_paths;
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
        fprintf(stderr, "parallel_checksums: cannot %s '%s', skipping\n",
                type == FTW_DNR ? "read directory" : "stat", path);
        return 0;
    }
    if (type != FTW_F || !S_ISREG(sb->st_mode))
        return 0; /* directories, symbolic links, FIFOs, sockets, devices */

    if (walk.n_paths == walk.cap) {
        size_t cap = walk.cap ? 2 * walk.cap : 1024;
        char **paths = realloc(walk.paths, cap * sizeof(*paths));

        if (paths == NULL) {
            walk.err = ENOMEM;
            return 1;
        }
        walk.paths = paths;
        walk.cap = cap;
    }
    copy = strdup(path);
    if (copy == NULL) {
        walk.err = ENOMEM;
        return 1;
    }
    walk.paths[walk.n_paths++] = copy;
    return 0;
}

static int
compare_paths(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
walk_free(void)
{
    for (size_t i = 0; i < walk.n_paths; i++)
        free(walk.paths[i]);
    free(walk.paths);
    walk.paths = NULL;
    walk.n_paths = walk.cap = 0;
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
 * Split a task's result "<sha> <lines> <bytes>" into its fields. Returns 0, or -1 if it is not
 * in that shape (which would be a bug in hash_file or in the library).
 */
static int
parse_result(const char *value, size_t len, uint64_t *out_lines, uint64_t *out_bytes)
{
    const char *p = value + SHA256_HEX_LEN;
    unsigned long long lines;
    unsigned long long bytes;
    char *end;

    if (len < SHA256_HEX_LEN + 4 || strspn(value, "0123456789abcdef") != SHA256_HEX_LEN ||
        *p != ' ' || p[1] < '0' || p[1] > '9')
        return -1;
    errno = 0;
    lines = strtoull(p + 1, &end, 10);
    if (errno != 0 || *end != ' ' || end[1] < '0' || end[1] > '9')
        return -1;
    bytes = strtoull(end + 1, &end, 10);
    if (errno != 0 || *end != '\0' || (size_t)(end - value) != len)
        return -1;
    *out_lines = lines;
    *out_bytes = bytes;
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
    fprintf(out, "usage: parallel_checksums [-j WORKERS] [DIR]\n"
                 "  SHA-256, lines and bytes of every regular file under DIR (default "
                 "/usr/include),\n"
                 "  one task per file on WORKERS processes (default 0 = online CPUs).\n");
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
    rx_exec_opts opts = RX_EXEC_OPTS_INIT;
    rx_work work = rx_work_function(hash_file);
    const char *dir = "/usr/include";
    rx_results *res = NULL;
    rx_context *ctx = NULL;
    rx_buf *args = NULL;
    unsigned workers = 0;
    uint64_t total_bytes = 0;
    size_t n_failed = 0;
    double t0, seconds;
    rx_err err;
    int status = 2;
    int opt;

    while ((opt = getopt(argc, argv, "hj:")) != -1) {
        switch (opt) {
        case 'j':
            if (parse_workers(optarg, &workers) != 0) {
                fprintf(stderr, "parallel_checksums: bad worker count '%s' (0..%u)\n", optarg,
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
        fprintf(stderr, "parallel_checksums: walk '%s' failed: %s\n", dir,
                strerror(walk.err ? walk.err : errno));
        goto done;
    }
    if (walk.n_paths == 0) {
        /* rx_exec without elem_args would run one task with an empty argument: do not call it. */
        fprintf(stderr, "parallel_checksums: 0 files, 0 failed, 0 bytes, 0.000 s, 0 files/s\n");
        status = 0;
        goto done;
    }
    qsort(walk.paths, walk.n_paths, sizeof(*walk.paths), compare_paths); /* base must not be NULL */

    args = calloc(walk.n_paths, sizeof(*args));
    if (args == NULL) {
        fprintf(stderr, "parallel_checksums: out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < walk.n_paths; i++)
        args[i] = (rx_buf){.data = walk.paths[i], .len = strlen(walk.paths[i])};

    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (sha256_md == NULL) {
        fprintf(stderr, "parallel_checksums: OpenSSL has no SHA256\n");
        goto done;
    }

    err = rx_local_parallel_context(workers, &ctx);
    if (err != RX_OK) {
        fprintf(stderr, "parallel_checksums: rx_local_parallel_context: %s\n", rx_strerror(err));
        goto done;
    }

    opts.elem_args = args;
    opts.n_elem_args = walk.n_paths;
    t0 = monotonic_s();
    err = rx_exec(ctx, &work, &opts, &res, NULL);
    seconds = monotonic_s() - t0;
    if (err != RX_OK && err != RX_EJOBFAILED) {
        fprintf(stderr, "parallel_checksums: rx_exec: %s (%s)\n", rx_strerror(err),
                rx_context_errmsg(ctx));
        goto done;
    }
    if (rx_results_count(res) != walk.n_paths) {
        fprintf(stderr, "parallel_checksums: rx_exec returned %zu results for %zu files\n",
                rx_results_count(res), walk.n_paths);
        goto done;
    }

    for (size_t i = 0; i < walk.n_paths; i++) {
        const char *path = walk.paths[i];
        int escape = path_needs_escape(path);
        size_t len = 0;
        const char *value =
            rx_results_state(res, i) == RX_TASK_OK ? rx_results_value(res, i, &len) : NULL;
        uint64_t lines, bytes;

        if (value != NULL && parse_result(value, len, &lines, &bytes) == 0) {
            printf("%s%.*s  %" PRIu64 "  %" PRIu64 "  ", escape ? "\\" : "", SHA256_HEX_LEN, value,
                   lines, bytes);
            put_path(stdout, path, escape);
            putchar('\n');
            total_bytes += bytes;
        } else {
            const char *msg = rx_results_error(res, i);

            if (msg == NULL)
                msg = value != NULL ? "malformed result"
                                    : rx_task_state_name(rx_results_state(res, i));
            fprintf(stderr, "ERROR  %s  ", msg);
            put_path(stderr, path, escape);
            putc('\n', stderr);
            n_failed++;
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "parallel_checksums: write to stdout failed\n");
        goto done;
    }

    fprintf(stderr,
            "parallel_checksums: %zu files, %zu failed, %" PRIu64
            " bytes, %.3f s, %.0f files/s (%u workers)\n",
            walk.n_paths, n_failed, total_bytes, seconds,
            seconds > 0 ? (double)walk.n_paths / seconds : 0.0, rx_context_workers(ctx));
    status = n_failed == 0 && err == RX_OK ? 0 : 1;

done:
    rx_results_free(res);
    rx_context_free(ctx);
    EVP_MD_free(sha256_md);
    free(args);
    walk_free();
    return status;
}
