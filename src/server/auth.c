/*
 * auth.c - the token file and bearer tokens (auth.h).
 *
 * The table keeps the SHA-256 digest of each token, not the token: a request's token is hashed
 * once and its digest compared with every entry with CRYPTO_memcmp, always all of them, so how
 * long a check takes does not depend on which entry matched or how many leading bytes of a guess
 * were right. Hashing first also makes every comparison the same length, whatever the lengths of
 * the tokens.
 */
#define _GNU_SOURCE /* O_NOFOLLOW, getpwnam_r */

#include "server/auth.h"

#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUTH_PW_BUF_BYTES 16384 /* getpwnam_r's buffer */

typedef struct auth_entry {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    uid_t uid;
} auth_entry;

struct auth_tokens {
    auth_entry *entries;
    size_t n;
};

size_t
auth_tokens_count(const auth_tokens *t)
{
    return t != NULL ? t->n : 0;
}

size_t
auth_tokens_count_others(const auth_tokens *t, uid_t uid)
{
    size_t n = 0;

    for (size_t i = 0; t != NULL && i < t->n; i++)
        n += t->entries[i].uid != uid;
    return n;
}

void
auth_tokens_free(auth_tokens *t)
{
    if (t == NULL)
        return;
    if (t->entries != NULL)
        OPENSSL_cleanse(t->entries, t->n * sizeof(*t->entries));
    rx__free(t->entries);
    rx__free(t);
}

static int
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The uid a USER field names: digits are a uid, anything else a name in the password
 * database. 0 on success, -1 (with a reason) otherwise. */
static int
resolve_user(const char *user, uid_t *out_uid, char *why, size_t why_len)
{
    int64_t n;

    if (user[0] >= '0' && user[0] <= '9') {
        if (rx__parse_i64(user, 0, (int64_t)(uid_t)-2, &n) != RX_OK) {
            (void)snprintf(why, why_len, "user '%.64s' is not a uid", user);
            return -1;
        }
        *out_uid = (uid_t)n;
        return 0;
    }
    {
        struct passwd pw, *found = NULL;
        char *buf = rx__malloc(AUTH_PW_BUF_BYTES);
        int rc;

        if (buf == NULL) {
            (void)snprintf(why, why_len, "out of memory");
            return -1;
        }
        rc = getpwnam_r(user, &pw, buf, AUTH_PW_BUF_BYTES, &found);
        if (found != NULL)
            *out_uid = pw.pw_uid;
        rx__free(buf);
        if (found == NULL) {
            (void)snprintf(why, why_len, "no user '%.64s'%s%s", user, rc != 0 ? ": " : "",
                           rc != 0 ? strerror(rc) : "");
            return -1;
        }
    }
    return 0;
}

rx_err
auth_tokens_parse(const char *text, size_t len, uid_t daemon_uid, auth_tokens **out_tokens,
                  char *errbuf, size_t errlen)
{
    auth_tokens *t = NULL;
    size_t cap = 0;
    size_t line_no = 0;
    size_t pos = 0;
    rx_err err = RX_EINVAL;

    if (text == NULL || out_tokens == NULL) {
        (void)snprintf(errbuf, errlen, "missing argument");
        return RX_EINVAL;
    }
    t = rx__calloc(1, sizeof(*t));
    if (t == NULL)
        goto nomem;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t line_len = nl != NULL ? (size_t)(nl - line) : len - pos;
        const char *tok, *user;
        size_t tok_len, user_len, i = 0;
        char user_buf[256];
        char why[300];
        uid_t uid = 0;

        pos += line_len + (nl != NULL ? 1 : 0);
        line_no++;
        if (line_len > 0 && line[line_len - 1] == '\r')
            line_len--;
        if (memchr(line, '\0', line_len) != NULL) {
            (void)snprintf(errbuf, errlen, "line %zu: a NUL byte", line_no);
            goto fail;
        }
        while (i < line_len && is_blank(line[i]))
            i++;
        if (i == line_len || line[i] == '#')
            continue;
        tok = line + i;
        while (i < line_len && !is_blank(line[i]))
            i++;
        tok_len = (size_t)(line + i - tok);
        while (i < line_len && is_blank(line[i]))
            i++;
        user = line + i;
        while (i < line_len && !is_blank(line[i]))
            i++;
        user_len = (size_t)(line + i - user);
        while (i < line_len && is_blank(line[i]))
            i++;
        if (user_len == 0 || i != line_len) {
            (void)snprintf(errbuf, errlen, "line %zu: not \"TOKEN USER\"", line_no);
            goto fail;
        }
        if (!rx__token_ok(tok, tok_len)) {
            (void)snprintf(errbuf, errlen,
                           "line %zu: the token is not %d to %d characters of A-Z a-z 0-9 - . _ "
                           "~ + / (then optional '=')",
                           line_no, AUTH_TOKEN_MIN_LEN, AUTH_TOKEN_MAX_LEN);
            goto fail;
        }
        if (user_len >= sizeof(user_buf)) {
            (void)snprintf(errbuf, errlen, "line %zu: the user name is too long", line_no);
            goto fail;
        }
        memcpy(user_buf, user, user_len);
        user_buf[user_len] = '\0';
        if (resolve_user(user_buf, &uid, why, sizeof(why)) != 0) {
            (void)snprintf(errbuf, errlen, "line %zu: %s", line_no, why);
            goto fail;
        }
        if (daemon_uid != 0 && uid != daemon_uid) {
            (void)snprintf(errbuf, errlen,
                           "line %zu: user '%s' (uid %lu) is not the daemon's user (uid %lu): a "
                           "daemon not run as root serves its own user only",
                           line_no, user_buf, (unsigned long)uid, (unsigned long)daemon_uid);
            goto fail;
        }
        if (t->n >= AUTH_MAX_TOKENS) {
            (void)snprintf(errbuf, errlen, "more than %d tokens", AUTH_MAX_TOKENS);
            goto fail;
        }
        if (t->n == cap) {
            size_t new_cap = cap > 0 ? cap * 2 : 8;
            auth_entry *p = rx__realloc(t->entries, new_cap * sizeof(*p));

            if (p == NULL)
                goto nomem;
            t->entries = p;
            cap = new_cap;
        }
        SHA256((const unsigned char *)tok, tok_len, t->entries[t->n].digest);
        t->entries[t->n].uid = uid;
        for (size_t k = 0; k < t->n; k++) {
            if (memcmp(t->entries[k].digest, t->entries[t->n].digest, SHA256_DIGEST_LENGTH) == 0) {
                (void)snprintf(errbuf, errlen, "line %zu: the same token as an earlier line",
                               line_no);
                t->n++; /* so that it is wiped with the others */
                goto fail;
            }
        }
        t->n++;
    }
    if (t->n == 0) {
        (void)snprintf(errbuf, errlen, "no token in it");
        goto fail;
    }
    *out_tokens = t;
    return RX_OK;

nomem:
    (void)snprintf(errbuf, errlen, "out of memory");
    err = RX_ENOMEM;
fail:
    auth_tokens_free(t);
    return err;
}

rx_err
auth_tokens_load(const char *path, uid_t daemon_uid, auth_tokens **out_tokens, char *errbuf,
                 size_t errlen)
{
    char why[512];
    struct stat st;
    char *text = NULL;
    size_t len = 0;
    int fd;
    rx_err err;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        (void)snprintf(errbuf, errlen, "token file '%s': %s", path,
                       errno == ELOOP ? "is a symbolic link" : strerror(errno));
        return RX_EIO;
    }
    if (fstat(fd, &st) != 0) {
        (void)snprintf(errbuf, errlen, "token file '%s': fstat failed: %s", path, strerror(errno));
        err = RX_EIO;
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        (void)snprintf(errbuf, errlen, "token file '%s' is not a regular file", path);
        err = RX_EIO;
        goto done;
    }
    if (st.st_uid != daemon_uid) {
        (void)snprintf(errbuf, errlen,
                       "token file '%s' belongs to uid %lu, not to the daemon's user (uid %lu): "
                       "refusing to use it",
                       path, (unsigned long)st.st_uid, (unsigned long)daemon_uid);
        err = RX_EPERM;
        goto done;
    }
    if ((st.st_mode & 077) != 0) {
        (void)snprintf(errbuf, errlen,
                       "token file '%s' is open to group or others (mode %04o): refusing to use "
                       "it; chmod 600 it",
                       path, (unsigned)(st.st_mode & 07777));
        err = RX_EPERM;
        goto done;
    }
    if ((uint64_t)st.st_size > AUTH_FILE_MAX_BYTES) {
        (void)snprintf(errbuf, errlen, "token file '%s' is over %zu bytes", path,
                       AUTH_FILE_MAX_BYTES);
        err = RX_EINVAL;
        goto done;
    }
    text = rx__malloc((size_t)st.st_size + 1);
    if (text == NULL) {
        (void)snprintf(errbuf, errlen, "out of memory");
        err = RX_ENOMEM;
        goto done;
    }
    {
        long got = rx__read_full(fd, text, (size_t)st.st_size);

        if (got < 0) {
            (void)snprintf(errbuf, errlen, "token file '%s': read failed: %s", path,
                           strerror(errno));
            err = RX_EIO;
            goto done;
        }
        len = (size_t)got;
    }
    err = auth_tokens_parse(text, len, daemon_uid, out_tokens, why, sizeof(why));
    if (err != RX_OK)
        (void)snprintf(errbuf, errlen, "token file '%s': %s", path, why);

done:
    if (text != NULL) {
        OPENSSL_cleanse(text, len);
        rx__free(text);
    }
    (void)close(fd);
    return err;
}

auth_result
auth_check(const auth_tokens *t, const char *authorization, uid_t *out_uid)
{
    static const char scheme[] = "Bearer";
    unsigned char digest[SHA256_DIGEST_LENGTH];
    const char *tok;
    size_t tok_len;
    uid_t uid = 0;
    int found = 0;

    if (authorization == NULL)
        return AUTH_MISSING;
    if (strncasecmp(authorization, scheme, sizeof(scheme) - 1) != 0 ||
        authorization[sizeof(scheme) - 1] != ' ')
        return AUTH_MALFORMED;
    tok = authorization + sizeof(scheme) - 1;
    while (*tok == ' ')
        tok++;
    tok_len = strlen(tok);
    while (tok_len > 0 && (tok[tok_len - 1] == ' ' || tok[tok_len - 1] == '\t'))
        tok_len--;
    if (!rx__token_ok(tok, tok_len))
        return AUTH_MALFORMED;
    if (t == NULL)
        return AUTH_UNKNOWN;
    SHA256((const unsigned char *)tok, tok_len, digest);
    for (size_t i = 0; i < t->n; i++) {
        int same = CRYPTO_memcmp(t->entries[i].digest, digest, sizeof(digest)) == 0;

        /* No early exit and no branch on the secret: the match is folded in with masks. */
        uid_t mask = (uid_t)0 - (uid_t)same;

        uid = (uid & ~mask) | (t->entries[i].uid & mask);
        found |= same;
    }
    OPENSSL_cleanse(digest, sizeof(digest));
    if (!found)
        return AUTH_UNKNOWN;
    *out_uid = uid;
    return AUTH_OK;
}
