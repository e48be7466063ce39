/*
 * fuzz_request.c - libFuzzer harness over rxjobd's request decoders (src/server/api_jobs.h,
 * src/server/b64.h): the bytes a client controls on the way from an HTTP request to a job spec.
 *
 * The first byte of the input picks the decoder:
 *   'Q'  the rest is a query string, split as the HTTP layer gets it from libmicrohttpd
 *        ("k=v&k&k=v", each piece cut at its first '='; a piece without '=' has a NULL value;
 *        a NUL byte ends a key or value as it would in a C string), fed to api_jobs_decode_filter,
 *        api_jobs_decode_wait and api_jobs_decode_flag;
 *   'B'  the rest is base64 text for b64_decode and b64_check;
 *   else the whole input (selector byte included) is a POST /v1/jobs body for
 *        api_jobs_decode_submit, so plain JSON files make valid seeds.
 * Everything a decoder hands back is freed, so LeakSanitizer reports any leak on any path, and
 * the decoders' contracts are checked (abort on a breach): output only on success, a NUL-
 * terminated reason that makes an error body (api_jobs_error_json), b64_check agreeing with
 * b64_decode, and a canonical round trip.
 */
#include "core/internal.h"
#include "server/api_jobs.h"
#include "server/b64.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_UID      1000
#define FUZZ_WHY_LEN  256
#define FUZZ_MAX_ARGS 64

#define FUZZ_CHECK(cond)                                                                         \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            (void)fprintf(stderr, "fuzz_request: %s:%d: check failed: %s\n", __FILE__, __LINE__, \
                          #cond);                                                                \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

/* The reason buffer holds a NUL within its length (it was pre-filled with a non-NUL byte). */
static void
check_why(const char *why)
{
    FUZZ_CHECK(memchr(why, '\0', FUZZ_WHY_LEN) != NULL);
}

static void
fuzz_submit(const uint8_t *data, size_t size)
{
    /* A copy of exactly size bytes, so ASan catches a read past body_len. */
    char *body = malloc(size > 0 ? size : 1);
    char why[FUZZ_WHY_LEN];
    engine_spec *spec = NULL;
    rx_err err;

    if (body == NULL)
        return;
    if (size > 0)
        memcpy(body, data, size);
    memset(why, 'x', sizeof(why));
    err = api_jobs_decode_submit(body, size, FUZZ_UID, NULL, &spec, why, sizeof(why));
    if (err == RX_OK) {
        FUZZ_CHECK(spec != NULL);
        FUZZ_CHECK(spec->uid == FUZZ_UID);
        FUZZ_CHECK(spec->argv != NULL && spec->argv[0] != NULL);
        FUZZ_CHECK(spec->kind != RX_WORK_FUNCTION || spec->function_name != NULL);
        FUZZ_CHECK(spec->n_args == 0 || spec->args != NULL);
        FUZZ_CHECK(spec->stdin_len == 0 || spec->stdin_data != NULL);
    } else {
        json_t *reply;

        FUZZ_CHECK(spec == NULL);
        check_why(why);
        FUZZ_CHECK(why[0] != '\0');
        /* The reason goes back as an error body: it must make one whatever bytes it quotes (a
         * field name cut inside a UTF-8 sequence once made none, and the daemon hung up). */
        reply = api_jobs_error_json(rx_errname(err), why);
        FUZZ_CHECK(reply != NULL);
        json_decref(reply);
    }
    api_jobs_spec_free(spec);
    free(body);
}

/* Splits text (NUL-terminated, modified in place) into at most FUZZ_MAX_ARGS arguments. */
static size_t
split_query(char *text, size_t text_len, api_jobs_arg *args)
{
    size_t n = 0;
    char *p = text;
    char *end = text + text_len;

    while (p <= end && n < FUZZ_MAX_ARGS) {
        char *amp = memchr(p, '&', (size_t)(end - p));
        char *piece_end = amp != NULL ? amp : end;
        char *eq = memchr(p, '=', (size_t)(piece_end - p));

        *piece_end = '\0';
        args[n].key = p;
        args[n].value = NULL;
        if (eq != NULL) {
            *eq = '\0';
            args[n].value = eq + 1;
        }
        n++;
        p = piece_end + 1;
    }
    return n;
}

static void
fuzz_query(const uint8_t *data, size_t size)
{
    static const char *const flag_keys[] = {"auto_cleanup", "follow", "force"};
    api_jobs_arg args[FUZZ_MAX_ARGS];
    char *text = malloc(size + 1);
    char why[FUZZ_WHY_LEN];
    size_t n;

    if (text == NULL)
        return;
    memcpy(text, data, size);
    text[size] = '\0';
    n = size > 0 ? split_query(text, size, args) : 0;

    {
        api_jobs_filter f = {.states = 12345u, .since_s = -7, .until_s = -7};

        memset(why, 'x', sizeof(why));
        if (api_jobs_decode_filter(args, n, &f, why, sizeof(why)) != RX_OK) {
            check_why(why);
            FUZZ_CHECK(f.states == 12345u && f.since_s == -7 && f.until_s == -7);
        } else {
            FUZZ_CHECK(f.since_s >= 0 && f.until_s >= 0);
        }
    }
    {
        int64_t ms = -7;

        memset(why, 'x', sizeof(why));
        if (api_jobs_decode_wait(args, n, &ms, why, sizeof(why)) != RX_OK) {
            check_why(why);
            FUZZ_CHECK(ms == -7);
        } else {
            FUZZ_CHECK(ms >= 0 && ms <= (int64_t)(API_JOBS_WAIT_MAX_S * 1000));
        }
    }
    for (size_t k = 0; k < sizeof(flag_keys) / sizeof(flag_keys[0]); k++) {
        int value = -7;

        memset(why, 'x', sizeof(why));
        if (api_jobs_decode_flag(args, n, flag_keys[k], -1, &value, why, sizeof(why)) != RX_OK) {
            check_why(why);
            FUZZ_CHECK(value == -7);
        } else {
            FUZZ_CHECK(value == 0 || value == 1 || value == -1);
        }
    }
    free(text);
}

static void
fuzz_b64(const uint8_t *data, size_t size)
{
    char *text = malloc(size > 0 ? size : 1); /* exactly size bytes: no NUL to lean on */
    unsigned char *out = NULL;
    size_t out_len = 0;
    size_t check_len = 0;
    int ok;
    rx_err err;

    if (text == NULL)
        return;
    if (size > 0)
        memcpy(text, data, size);
    ok = b64_check(text, size, &check_len);
    err = b64_decode(text, size, &out, &out_len);
    FUZZ_CHECK((err == RX_OK) == (ok != 0));
    if (err == RX_OK) {
        char *again;

        FUZZ_CHECK(out != NULL && out_len == check_len && out[out_len] == '\0');
        FUZZ_CHECK(b64_encoded_len(out_len) == size);
        again = malloc(size + 1);
        if (again != NULL) {
            b64_encode(out, out_len, again); /* canonical text: the round trip is exact */
            FUZZ_CHECK(memcmp(again, text, size) == 0 && again[size] == '\0');
            free(again);
        }
        rx__free(out);
    } else {
        FUZZ_CHECK(out == NULL);
    }
    free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && data[0] == 'Q')
        fuzz_query(data + 1, size - 1);
    else if (size > 0 && data[0] == 'B')
        fuzz_b64(data + 1, size - 1);
    else
        fuzz_submit(data, size);
    return 0;
}
