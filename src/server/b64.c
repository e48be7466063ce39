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

static int
is_b64_letter(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* The 6-bit value of a letter of the alphabet (is_b64_letter). */
static unsigned
b64_letter_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (unsigned)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (unsigned)(c - 'a') + 26;
    if (c >= '0' && c <= '9')
        return (unsigned)(c - '0') + 52;
    return c == '+' ? 62 : 63;
}

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
    for (size_t i = 0; i < text_len - pad; i++) {
        if (!is_b64_letter((unsigned char)text[i]))
            return 0;
    }
    /* The letter before the padding carries bits past the last byte: they must be zero, or two
     * texts would decode to the same bytes ("dHJ1ZQ==" and "dHJ1ZR==" are both "true"). */
    if (pad > 0 &&
        (b64_letter_value((unsigned char)text[text_len - pad - 1]) & (pad == 2 ? 0x0f : 0x03)) != 0)
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
