/*
 * auth.h - who calls over TCP: the token file of rxjobd --tokens, and the bearer token of a
 * request (docs/protocol.md "Who"). On the Unix socket the caller is the peer's uid
 * (SO_PEERCRED); over TCP there is no such thing, so each request names its user with
 * "Authorization: Bearer TOKEN", a token the daemon's token file maps to a user.
 *
 * The token file: one "TOKEN USER" per line; blank lines and lines starting with '#' are
 * ignored. TOKEN is AUTH_TOKEN_MIN_LEN..AUTH_TOKEN_MAX_LEN characters of RFC 6750's b64token
 * (A-Z a-z 0-9 - . _ ~ + / then optional '='); USER a user name (getpwnam) or a numeric uid. The
 * file must be a regular file owned by the daemon's user and closed to group and others (as ssh
 * wants of a private key); a daemon not run as root may map tokens to its own uid only.
 */
#ifndef RX_SERVER_AUTH_H
#define RX_SERVER_AUTH_H

#include "core/token.h"
#include "rxjob.h"

#include <stddef.h>
#include <sys/types.h>

#define AUTH_TOKEN_MIN_LEN  RX__TOKEN_MIN_LEN /* characters (core/token.h) */
#define AUTH_TOKEN_MAX_LEN  RX__TOKEN_MAX_LEN /* characters */
#define AUTH_MAX_TOKENS     4096              /* lines with a token in one file */
#define AUTH_FILE_MAX_BYTES ((size_t)1 << 20) /* the token file, bytes */

typedef struct auth_tokens auth_tokens;

/*
 * Parse the text of a token file (len bytes, need not be NUL-terminated). daemon_uid: the uid
 * the daemon runs as; unless it is 0, every token must map to it. RX_OK with *out_tokens (free
 * with auth_tokens_free); RX_EINVAL with a reason naming the line in errbuf (a token too short,
 * too long or with a bad character, a duplicate token, an unknown user, a user other than the
 * daemon's, no token at all); RX_ENOMEM.
 */
rx_err auth_tokens_parse(const char *text, size_t len, uid_t daemon_uid, auth_tokens **out_tokens,
                         char *errbuf, size_t errlen);

/*
 * Read and parse the token file at path. Before reading, it must be a regular file (no symlink
 * is followed), owned by daemon_uid, with no permission bit for group or others, and at most
 * AUTH_FILE_MAX_BYTES. RX_OK; RX_EPERM (ownership or mode; errbuf says which and how to fix it);
 * RX_EIO (cannot be opened or read); the codes of auth_tokens_parse.
 */
rx_err auth_tokens_load(const char *path, uid_t daemon_uid, auth_tokens **out_tokens, char *errbuf,
                        size_t errlen);

/* Tokens in the table. */
size_t auth_tokens_count(const auth_tokens *t);

/* How many tokens map to a user other than uid. */
size_t auth_tokens_count_others(const auth_tokens *t, uid_t uid);

/* Free a table. NULL-safe. */
void auth_tokens_free(auth_tokens *t);

/* What auth_check found. */
typedef enum auth_result {
    AUTH_OK = 0,        /* a known token: *out_uid is its user */
    AUTH_MISSING = 1,   /* no Authorization header */
    AUTH_MALFORMED = 2, /* not "Bearer TOKEN" with a well-formed token */
    AUTH_UNKNOWN = 3    /* a well-formed token the table does not hold */
} auth_result;

/*
 * Check an Authorization header value (NULL when the request has none): the scheme "Bearer"
 * (any case), one or more spaces, the token. The token is compared with every entry of the
 * table, each in constant time (SHA-256 digests compared with CRYPTO_memcmp, never stopping
 * early), so the time taken says nothing about how close a guess was. Thread-safe (the table is
 * read-only).
 */
auth_result auth_check(const auth_tokens *t, const char *authorization, uid_t *out_uid);

#endif
