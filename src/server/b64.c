/*
 * b64.c - strict standard base64 on top of OpenSSL's block coder.
 *
 * EVP_DecodeBlock is lenient where the wire must not be: it skips leading and trailing white
 * space, it decodes the padding as zero bytes (a 4-character group always yields 3 bytes), and
 * it ignores the bits of the last letter that fall past the last byte. So the text is checked
 * here first, character by character (those bits must be zero: RFC 4648 section 3.5's
 * canonical encoding, one text per byte string), and the padding is subtracted from the
 * decoded length. What EVP_DecodeBlock then gets is always well-formed, so its only
 * failure would be our bug.
 */
#include "server/b64.h"

#include "core/internal.h"

#include <openssl/evp.h>
#include <stdint.h>

/* The 6-bit value of each letter of the standard alphabet, and B64_NOT_LETTER (64) for every
 * other byte ('=', white space, NUL, bytes over 127): one lookup per character, since b64_check
 * reads every byte of a submission's argv and environment. */
#define B64_NOT_LETTER 64
static const unsigned char b64_value[256] = {
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 62, 64, 64, 64, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 64, 64, 64, 64, 64, 64, 64, 0,  1,  2,  3,  4,  5,  6,
    7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 64, 64, 64, 64, 64,
    64, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
    49, 50, 51, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
};

size_t
b64_encoded_len(size_t len)
{
    return (len / 3 + (len % 3 != 0)) * 4;
}

void
b64_encode(const void *data, size_t len, char *out)
{
    /* EVP_EncodeBlock takes an int length: feed it pieces of at most 3 * 2^28 bytes. */
    static const size_t piece_bytes = (size_t)3 << 28;
    const unsigned char *in = data;

    out[0] = '\0';
    while (len > 0) {
        size_t n = len < piece_bytes ? len : piece_bytes;
        int written = EVP_EncodeBlock((unsigned char *)out, in, (int)n);

        out += written;
        in += n;
        len -= n;
    }
}

int
b64_check(const char *text, size_t text_len, size_t *out_len)
{
    size_t pad = 0;

    if (text == NULL && text_len > 0)
        return 0;
    if (text_len % 4 != 0)
        return 0;
    if (text_len > 0 && text[text_len - 1] == '=')
        pad = (text_len >= 2 && text[text_len - 2] == '=') ? 2 : 1;
    {
        const unsigned char *p = (const unsigned char *)text;
        unsigned bad = 0;

        /* Or-ed over the whole text, one test at the end: no branch per character. */
        for (size_t i = 0; i < text_len - pad; i++)
            bad |= b64_value[p[i]];
        if ((bad & B64_NOT_LETTER) != 0)
            return 0;
    }
    /* The letter before the padding carries bits past the last byte: they must be zero, or two
     * texts would decode to the same bytes ("dHJ1ZQ==" and "dHJ1ZR==" are both "true"). */
    if (pad > 0 &&
        (b64_value[(unsigned char)text[text_len - pad - 1]] & (pad == 2 ? 0x0f : 0x03)) != 0)
        return 0;
    if (out_len != NULL)
        *out_len = text_len / 4 * 3 - pad;
    return 1;
}

rx_err
b64_decode(const char *text, size_t text_len, unsigned char **out_data, size_t *out_len)
{
    unsigned char *data;
    size_t len;
    int n;

    if (out_data == NULL || out_len == NULL)
        return RX_EINVAL;
    if (text_len > B64_MAX_TEXT_BYTES)
        return RX_ETOOBIG;
    if (!b64_check(text, text_len, &len))
        return RX_EINVAL;

    /* Room for the padding's zero bytes, which EVP_DecodeBlock writes, and our NUL. */
    data = rx__malloc(text_len / 4 * 3 + 1);
    if (data == NULL)
        return RX_ENOMEM;
    if (text_len > 0) {
        n = EVP_DecodeBlock(data, (const unsigned char *)text, (int)text_len);
        if (n < 0 || (size_t)n != text_len / 4 * 3) {
            rx__free(data);
            return RX_EINVAL;
        }
    }
    data[len] = '\0';
    *out_data = data;
    *out_len = len;
    return RX_OK;
}
