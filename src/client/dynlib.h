/*
 * dynlib.h - libcurl and libcrypto, loaded with dlopen the first time the library needs them.
 *
 * Only the server context speaks HTTP (libcurl) and base64 (libcrypto); every other process that
 * links librxjob (a task program rxjobd execs once per chunk, the local contexts, `rxjob
 * --version`) would otherwise pay for mapping libcurl's ~30 dependent libraries at each start
 * (docs/engine.md "Chunks"). The types and constants still come from <curl/curl.h> and
 * <openssl/evp.h>; only the functions are looked up, by the SONAMEs CMake gives (RX_CURL_SONAME,
 * RX_CRYPTO_SONAME). A library is loaded once per process and never unloaded.
 */
#ifndef RX_CLIENT_DYNLIB_H
#define RX_CLIENT_DYNLIB_H

#include <curl/curl.h>

/* The libcurl functions http_client.c calls, as libcurl declares them. */
typedef struct rx__curl_api {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *h, CURLoption option, ...);
    CURLcode (*easy_perform)(CURL *h);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *h);
    const char *(*easy_strerror)(CURLcode code);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
    void (*slist_free_all)(struct curl_slist *list);
} rx__curl_api;

/* The libcrypto functions ctx_server.c calls (base64, protocol.md "Bytes"). */
typedef struct rx__crypto_api {
    int (*encode_block)(unsigned char *t, const unsigned char *f, int n); /* EVP_EncodeBlock */
    int (*decode_block)(unsigned char *t, const unsigned char *f, int n); /* EVP_DecodeBlock */
} rx__crypto_api;

/*
 * libcurl's functions, loaded on the first call (by RX_CURL_SONAME, "libcurl.so.4" by default).
 * NULL when the library cannot be loaded or lacks one of them: then *out_why (when out_why is not
 * NULL) says so, naming the library and dlerror's text, in static storage. The same answer on
 * every later call. Thread-safe.
 */
const rx__curl_api *rx__curl(const char **out_why);

/* libcrypto's functions (RX_CRYPTO_SONAME, "libcrypto.so.3" by default), as rx__curl. */
const rx__crypto_api *rx__crypto(const char **out_why);

#endif
