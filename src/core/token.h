/*
 * token.h - the syntax of a bearer token, shared by rxjobd's token file (server/auth.c) and the
 * client that sends one (client/http_client.c): RFC 6750's b64token, that is 1 or more of
 * A-Z a-z 0-9 - . _ ~ + / then any number of '=', here RX__TOKEN_MIN_LEN..RX__TOKEN_MAX_LEN
 * characters in all. Nothing in it can end a header line or smuggle another header.
 */
#ifndef RX_CORE_TOKEN_H
#define RX_CORE_TOKEN_H

#include <stddef.h>

#define RX__TOKEN_MIN_LEN 32  /* characters: about 190 random bits in base64 */
#define RX__TOKEN_MAX_LEN 512 /* characters */

/* 1 if s[0..len) is such a token, else 0. */
int rx__token_ok(const char *s, size_t len);

#endif /* RX_CORE_TOKEN_H */
