/*
 * work.c - encode and decode a job's work and its arguments (see work.h).
 *
 * The encoder writes what the decoder checks: every length is bounded by the bytes left, so a
 * truncated or corrupt blob is RX_EINVAL, never a read past its end. Numbers are written byte by
 * byte in little-endian order, so the format does not depend on the host's.
 */
#include "store/work.h"

#include "core/internal.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define WORK_MAGIC "RXW1"
#define ARGS_MAGIC "RXA1"

enum { F_CWD = 1, F_FUNCTION = 2, F_STDIN = 4, F_ENV = 8 };

typedef struct wbuf {
    unsigned char *p;
    size_t len;
    size_t cap;
    int failed;
} wbuf;

static void
wb_put(wbuf *b, const void *data, size_t len)
{
    if (b->failed)
        return;
    if (b->cap - b->len < len) {
        size_t cap = b->cap ? b->cap : 256;
        unsigned char *p;

        while (cap - b->len < len)
            cap *= 2;
        p = rx__realloc(b->p, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

static void
wb_u32(wbuf *b, uint32_t v)
{
    char x[4];

    rx__le32_put(x, v);
    wb_put(b, x, sizeof(x));
}

static void
wb_u64(wbuf *b, uint64_t v)
{
    wb_u32(b, (uint32_t)v);
    wb_u32(b, (uint32_t)(v >> 32));
}

static void
wb_str(wbuf *b, const char *s)
{
    size_t len = strlen(s);

    wb_u32(b, (uint32_t)len);
    wb_put(b, s, len);
}

static uint32_t
get_u32(const unsigned char *p)
{
    return rx__le32_get(p);
}

static uint64_t
get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static size_t
strv_len(char *const *v)
{
    size_t n = 0;

    while (v != NULL && v[n] != NULL)
        n++;
    return n;
}

static int
str_too_big(const char *s)
{
    return s != NULL && strlen(s) > UINT32_MAX;
}

rx_err
store_work_encode(const store_work *w, void **out_blob, size_t *out_len)
{
    wbuf b = {0};
    size_t argc = strv_len(w->argv), n_env = strv_len(w->env);
    uint32_t flags = 0;

    for (size_t i = 0; i < argc; i++)
        if (str_too_big(w->argv[i]))
            return RX_ETOOBIG;
    for (size_t i = 0; i < n_env; i++)
        if (str_too_big(w->env[i]))
            return RX_ETOOBIG;
    if (str_too_big(w->cwd) || str_too_big(w->function) || argc > UINT32_MAX || n_env > UINT32_MAX)
        return RX_ETOOBIG;
    flags |= w->cwd ? F_CWD : 0;
    flags |= w->function ? F_FUNCTION : 0;
    flags |= w->stdin_data ? F_STDIN : 0;
    flags |= w->env ? F_ENV : 0;

    wb_put(&b, WORK_MAGIC, 4);
    wb_u32(&b, (uint32_t)w->kind);
    wb_u32(&b, (uint32_t)argc);
    wb_u32(&b, (uint32_t)n_env);
    wb_u32(&b, flags);
    for (size_t i = 0; i < argc; i++)
        wb_str(&b, w->argv[i]);
    for (size_t i = 0; i < n_env; i++)
        wb_str(&b, w->env[i]);
    if (w->cwd)
        wb_str(&b, w->cwd);
    if (w->function)
        wb_str(&b, w->function);
    if (w->stdin_data) {
        wb_u64(&b, w->stdin_len);
        wb_put(&b, w->stdin_data, w->stdin_len);
    }
    if (b.failed) {
        rx__free(b.p);
        return RX_ENOMEM;
    }
    *out_blob = b.p;
    *out_len = b.len;
    return RX_OK;
}

typedef struct rbuf {
    const unsigned char *p;
    size_t left;
} rbuf;

static int
rb_u32(rbuf *r, uint32_t *v)
{
    if (r->left < 4)
        return -1;
    *v = get_u32(r->p);
    r->p += 4;
    r->left -= 4;
    return 0;
}

/* A string as an owned NUL-terminated copy; a NUL inside is malformed (argv cannot hold one). */
static rx_err
rb_str(rbuf *r, char **out)
{
    uint32_t len;

    if (rb_u32(r, &len) != 0 || r->left < len || memchr(r->p, '\0', len) != NULL)
        return RX_EINVAL;
    *out = rx__memdup(r->p, len);
    if (*out == NULL)
        return RX_ENOMEM;
    r->p += len;
    r->left -= len;
    return RX_OK;
}

static rx_err
rb_strv(rbuf *r, size_t n, char ***out)
{
    char **v;
    rx_err err;

    /* Each string takes at least its 4-byte length: a count beyond that is malformed, and
     * checking it first keeps a corrupt count from asking for a huge array. */
    if (n > r->left / 4)
        return RX_EINVAL;
    v = rx__calloc(n + 1, sizeof(*v));
    if (v == NULL)
        return RX_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        err = rb_str(r, &v[i]);
        if (err != RX_OK) {
            for (size_t k = 0; k < i; k++)
                rx__free(v[k]);
            rx__free(v);
            return err;
        }
    }
    *out = v;
    return RX_OK;
}

rx_err
store_work_decode(const void *blob, size_t len, store_work *out_w)
{
    rbuf r = {blob, len};
    store_work w;
    uint32_t kind, argc, n_env, flags;
    rx_err err = RX_EINVAL;

    memset(&w, 0, sizeof(w));
    if (len < 4 || memcmp(blob, WORK_MAGIC, 4) != 0)
        return RX_EINVAL;
    r.p += 4;
    r.left -= 4;
    if (rb_u32(&r, &kind) != 0 || rb_u32(&r, &argc) != 0 || rb_u32(&r, &n_env) != 0 ||
        rb_u32(&r, &flags) != 0)
        goto fail;
    if (kind != RX_WORK_COMMAND && kind != RX_WORK_FUNCTION)
        goto fail;
    w.kind = (rx_work_kind)kind;
    w.argc = argc;
    err = rb_strv(&r, argc, &w.argv);
    if (err != RX_OK)
        goto fail;
    if (flags & F_ENV) {
        w.n_env = n_env;
        err = rb_strv(&r, n_env, &w.env);
        if (err != RX_OK)
            goto fail;
    }
    if (flags & F_CWD) {
        err = rb_str(&r, &w.cwd);
        if (err != RX_OK)
            goto fail;
    }
    if (flags & F_FUNCTION) {
        err = rb_str(&r, &w.function);
        if (err != RX_OK)
            goto fail;
    }
    if (flags & F_STDIN) {
        uint64_t n;

        err = RX_EINVAL;
        if (r.left < 8)
            goto fail;
        n = get_u64(r.p);
        r.p += 8;
        r.left -= 8;
        if (n > r.left)
            goto fail;
        w.stdin_data = rx__memdup(r.p, (size_t)n);
        if (w.stdin_data == NULL) {
            err = RX_ENOMEM;
            goto fail;
        }
        w.stdin_len = (size_t)n;
        r.left -= (size_t)n;
    }
    if (r.left != 0 || w.argc == 0) {
        err = RX_EINVAL;
        goto fail;
    }
    *out_w = w;
    return RX_OK;
fail:
    store_work_free(&w);
    return err;
}

void
store_work_free(store_work *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; w->argv != NULL && i < w->argc; i++)
        rx__free(w->argv[i]);
    for (size_t i = 0; w->env != NULL && i < w->n_env; i++)
        rx__free(w->env[i]);
    rx__free(w->argv);
    rx__free(w->env);
    rx__free(w->cwd);
    rx__free(w->function);
    rx__free(w->stdin_data);
    memset(w, 0, sizeof(*w));
}

rx_err
store_args_encode(const rx_buf *args, size_t n, void **out_blob, size_t *out_len)
{
    size_t head = 16 + 8 * (n + 1), total = head, off = 0;
    unsigned char *p, *w;

    for (size_t i = 0; i < n; i++)
        total += args[i].len;
    p = rx__malloc(total);
    if (p == NULL)
        return RX_ENOMEM;
    memcpy(p, ARGS_MAGIC, 4);
    memset(p + 4, 0, 4);
    w = p + 8;
    for (int k = 0; k < 8; k++)
        w[k] = (unsigned char)((uint64_t)n >> (8 * k));
    w = p + 16;
    for (size_t i = 0; i <= n; i++) {
        for (int k = 0; k < 8; k++)
            w[8 * i + (size_t)k] = (unsigned char)((uint64_t)off >> (8 * k));
        if (i < n)
            off += args[i].len;
    }
    w = p + head;
    for (size_t i = 0; i < n; i++) {
        if (args[i].len > 0)
            memcpy(w, args[i].data, args[i].len);
        w += args[i].len;
    }
    *out_blob = p;
    *out_len = total;
    return RX_OK;
}

static int
pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    unsigned char *p = buf;

    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

rx_err
store_args_read(int fd, size_t i, void **out_data, size_t *out_len)
{
    unsigned char head[16], offs[16];
    uint64_t n, from, to, base;
    void *data;

    if (pread_all(fd, head, sizeof(head), 0) != 0)
        return RX_EIO;
    if (memcmp(head, ARGS_MAGIC, 4) != 0)
        return RX_EINVAL;
    n = get_u64(head + 8);
    if (i >= n || n > (UINT64_MAX - 16) / 8 - 1)
        return RX_EINVAL;
    if (pread_all(fd, offs, sizeof(offs), 16 + 8 * (uint64_t)i) != 0)
        return RX_EIO;
    from = get_u64(offs);
    to = get_u64(offs + 8);
    if (to < from || to - from > SIZE_MAX - 1)
        return RX_EINVAL;
    base = 16 + 8 * (n + 1);
    data = rx__malloc((size_t)(to - from) + 1);
    if (data == NULL)
        return RX_ENOMEM;
    if (to > from && pread_all(fd, data, (size_t)(to - from), base + from) != 0) {
        rx__free(data);
        return RX_EIO;
    }
    ((unsigned char *)data)[to - from] = '\0';
    *out_data = data;
    *out_len = (size_t)(to - from);
    return RX_OK;
}
