/*
 * token.c - the syntax of a bearer token (token.h).
 */
#include "core/token.h"

static int
is_token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

int
rx__token_ok(const char *s, size_t len)
{
    size_t i = 0;

    if (len < RX__TOKEN_MIN_LEN || len > RX__TOKEN_MAX_LEN)
        return 0;
    while (i < len && is_token_char(s[i]))
        i++;
    if (i == 0)
        return 0;
    while (i < len && s[i] == '=')
        i++;
    return i == len;
}
