/*
 * b64.h - standard base64 (RFC 4648 section 4, with padding) for the wire's `_b64` fields
 * (docs/protocol.md "Bytes"). OpenSSL's EVP_EncodeBlock and EVP_DecodeBlock do the work; this
 * module adds what they lack: a strict check of the input (EVP_DecodeBlock skips white space and
 * counts padding as bytes) and the true decoded length.
 */
#ifndef RX_SERVER_B64_H
#define RX_SERVER_B64_H

#include "rxjob.h"

#include <stddef.h>

/* The longest base64 text b64_decode takes, in characters (EVP_DecodeBlock counts in int). */
#define B64_MAX_TEXT_BYTES ((size_t)1 << 30)

/* Characters that len bytes encode to, without a NUL. */
size_t b64_encoded_len(size_t len);

/*
 * Encode len bytes of data into out, which has room for b64_encoded_len(len) + 1 characters;
 * out is NUL-terminated. Encoding a long input in pieces whose lengths are multiples of 3 (the
 * last excepted) and concatenating them gives the encoding of the whole.
 */
void b64_encode(const void *data, size_t len, char *out);

/*
 * Decode text (text_len characters, no NUL needed): only the 64 letters of the standard
 * alphabet, a length that is a multiple of 4, and at most two '=' at the very end, after a letter
 * whose bits past the last byte are zero (canonical: "Zg==", never "Zh=="); no white space, no
 * line breaks. On RX_OK, *out_data is a malloc'd (rx__malloc) copy of the bytes
 * followed by a NUL not counted in *out_len; free with rx__free. RX_EINVAL for bad text
 * (nothing written); RX_ETOOBIG over B64_MAX_TEXT_BYTES; RX_ENOMEM.
 */
rx_err b64_decode(const char *text, size_t text_len, unsigned char **out_data, size_t *out_len);

/* 1 if text is well-formed base64 as b64_decode wants it, with *out_len its decoded length. */
int b64_check(const char *text, size_t text_len, size_t *out_len);

#endif
