/*
 * results.c - accessors of rx_results and the removal of its spool.
 *
 * The slots are filled by whoever ran the job (src/exec/pool.c for the local contexts); this
 * file only reads them, streams captured output in bounded pieces, and frees everything.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include "core/results.h"

#include "core/internal.h"
#include "core/status.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define OUTPUT_PIECE_BYTES (64 * 1024)

rx_results *
rx__results_new(size_t n)
{
    rx_results *res = rx__calloc(1, sizeof(*res));

    if (res == NULL)
        return NULL;
    res->n = n;
    res->status = RX_JOB_UNDETERMINED;
    res->slots = rx__calloc(n ? n : 1, sizeof(*res->slots));
    if (res->slots == NULL) {
        rx__free(res);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        res->slots[i].state = RX_TASK_NOT_RUN;
        res->slots[i].exit_status = -1;
        res->slots[i].out_file = -1;
    }
    return res;
}

rx_err
rx__results_add_file(rx_results *res, const char *path, int32_t *out_index)
{
    if (res->n_files == res->cap_files) {
        size_t cap = res->cap_files ? res->cap_files * 2 : 16;
        char **files = rx__realloc(res->files, cap * sizeof(*files));

        if (files == NULL)
            return RX_ENOMEM;
        res->files = files;
        res->cap_files = cap;
    }
    if (res->n_files >= INT32_MAX)
        return RX_ETOOBIG;
    res->files[res->n_files] = rx__strdup(path);
    if (res->files[res->n_files] == NULL)
        return RX_ENOMEM;
    *out_index = (int32_t)res->n_files++;
    return RX_OK;
}

rx_err
rx__slot_set_error(rx__slot *slot, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    char *copy;

    va_start(ap, fmt);
    (void)vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    copy = rx__strdup(buf);
    if (copy == NULL)
        return RX_ENOMEM;
    rx__free(slot->error);
    slot->error = copy;
    return RX_OK;
}

void
rx__results_settle(rx_results *res)
{
    rx__task_counts c = {0};

    c.total = res->n;
    for (size_t i = 0; i < res->n; i++) {
        if (rx__task_state_is_failure(res->slots[i].state))
            c.failed++;
        else
            c.ok++;
    }
    res->status = rx__job_status_from_counts(&c); /* status.c owns the rule */
}

static const rx__slot *
slot_at(const rx_results *res, size_t index)
{
    if (res == NULL || index >= res->n)
        return NULL;
    return &res->slots[index];
}

size_t
rx_results_count(const rx_results *res)
{
    return res ? res->n : 0;
}

rx_job_status
rx_results_status(const rx_results *res)
{
    return res ? res->status : RX_JOB_UNDETERMINED;
}

size_t
rx_results_failed(const rx_results *res)
{
    size_t failed = 0;

    for (size_t i = 0; res != NULL && i < res->n; i++)
        failed += rx__task_state_is_failure(res->slots[i].state) != 0;
    return failed;
}

rx_task_state
rx_results_state(const rx_results *res, size_t index)
{
    const rx__slot *s = slot_at(res, index);

    return s ? s->state : RX_TASK_NOT_RUN;
}

const void *
rx_results_value(const rx_results *res, size_t index, size_t *out_len)
{
    const rx__slot *s = slot_at(res, index);

    if (out_len != NULL)
        *out_len = 0;
    if (s == NULL || s->state != RX_TASK_OK)
        return NULL;
    if (out_len != NULL)
        *out_len = s->value_len;
    return s->value ? s->value : "";
}

const char *
rx_results_error(const rx_results *res, size_t index)
{
    const rx__slot *s = slot_at(res, index);

    if (s == NULL || s->state == RX_TASK_OK)
        return NULL;
    return s->error ? s->error : rx_task_state_name(s->state);
}

int
rx_results_exit_status(const rx_results *res, size_t index)
{
    const rx__slot *s = slot_at(res, index);

    return s ? s->exit_status : -1;
}

int
rx_results_signal(const rx_results *res, size_t index)
{
    const rx__slot *s = slot_at(res, index);

    return s ? s->signal : 0;
}

double
rx_results_elapsed_s(const rx_results *res, size_t index)
{
    const rx__slot *s = slot_at(res, index);

    if (s == NULL || s->start_ms == 0 || s->end_ms < s->start_ms)
        return 0.0;
    return (double)(s->end_ms - s->start_ms) / 1000.0;
}

uint64_t
rx_results_output_size(const rx_results *res, size_t index)
{
    const rx__slot *s = slot_at(res, index);

    return s ? s->out_len : 0;
}

rx_err
rx_results_write_output(const rx_results *res, size_t index, FILE *out)
{
    const rx__slot *s = slot_at(res, index);
    char *buf = NULL;
    uint64_t left;
    off_t off;
    int fd = -1;
    rx_err err = RX_OK;

    if (s == NULL || out == NULL)
        return RX_EINVAL;
    if (s->out_file < 0 || s->out_len == 0)
        return RX_OK;
    buf = rx__malloc(OUTPUT_PIECE_BYTES);
    if (buf == NULL)
        return RX_ENOMEM;
    fd = open(res->files[s->out_file], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = RX_EIO;
        goto done;
    }
    off = (off_t)s->out_off;
    for (left = s->out_len; left > 0;) {
        size_t want = left < OUTPUT_PIECE_BYTES ? (size_t)left : OUTPUT_PIECE_BYTES;
        ssize_t got = pread(fd, buf, want, off);

        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) { /* the file is shorter than recorded: report, do not spin */
            err = RX_EIO;
            goto done;
        }
        if (fwrite(buf, 1, (size_t)got, out) != (size_t)got) {
            err = RX_EIO;
            goto done;
        }
        off += got;
        left -= (uint64_t)got;
    }
done:
    if (fd >= 0)
        close(fd);
    rx__free(buf);
    return err;
}

rx_err
rx_results_write_all_output(const rx_results *res, FILE *out)
{
    if (res == NULL || out == NULL)
        return RX_EINVAL;
    for (size_t i = 0; i < res->n; i++) {
        rx_err err;

        if (fprintf(out, "==> task %zu <==\n", i) < 0)
            return RX_EIO;
        err = rx_results_write_output(res, i, out);
        if (err != RX_OK)
            return err;
    }
    return fflush(out) == 0 ? RX_OK : RX_EIO;
}

/* Remove the spool and everything in it, whatever a task left there (directories too),
 * without following symbolic links (FTW_PHYS): a task cannot make us delete elsewhere. */
static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if ((flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT)
        rx__log(RX_LOG_WARN, "results: remove '%s' failed: %s, ignoring", path, strerror(errno));
    return 0;
}

static void
remove_spool(const char *dir)
{
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        rx__log(RX_LOG_WARN, "results: remove spool '%s' failed: %s, ignoring", dir,
                strerror(errno));
}

void
rx_results_free(rx_results *res)
{
    if (res == NULL)
        return;
    for (size_t i = 0; i < res->n; i++) {
        rx__free(res->slots[i].value);
        rx__free(res->slots[i].error);
    }
    rx__free(res->slots);
    for (size_t i = 0; i < res->n_files; i++)
        rx__free(res->files[i]);
    rx__free(res->files);
    if (res->spool_dir != NULL)
        remove_spool(res->spool_dir);
    rx__free(res->spool_dir);
    rx__free(res);
}
