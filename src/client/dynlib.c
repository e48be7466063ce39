/*
 * dynlib.c - load libcurl and libcrypto on first use (dlopen by SONAME, then dlsym each function
 * into a table), once per process. A library that is missing, or lacks a function, is remembered
 * as a message for the callers to report (RX_ECONTEXT), never a crash.
 */
#include "client/dynlib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#ifndef RX_CURL_SONAME
#define RX_CURL_SONAME "libcurl.so.4"
#endif
#ifndef RX_CRYPTO_SONAME
#define RX_CRYPTO_SONAME "libcrypto.so.3"
#endif

/* The room for why a library could not be loaded, bytes. */
#define DYNLIB_WHY_MAX 512

/* One function to look up: its name and where its pointer goes in the table. */
typedef struct dynlib_sym {
    const char *name;
    size_t offset;
} dynlib_sym;

/* One library: its SONAME, its functions, the table they fill, and the outcome of loading it. */
typedef struct dynlib {
    const char *soname;
    const dynlib_sym *syms;
    size_t n_syms;
    void *table;
    pthread_once_t once;
    int ok;
    char why[DYNLIB_WHY_MAX];
} dynlib;

/* dlsym hands back a void *; POSIX guarantees it converts to a function pointer, which is stored
 * through memcpy (ISO C has no cast between the two). */
_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "function pointers fit a void *");

static rx__curl_api curl_api;
static rx__crypto_api crypto_api;

#define CURL_SYM(field, name)                \
    {                                        \
#name, offsetof(rx__curl_api, field) \
    }
static const dynlib_sym curl_syms[] = {
    CURL_SYM(global_init, curl_global_init),       CURL_SYM(easy_init, curl_easy_init),
    CURL_SYM(easy_setopt, curl_easy_setopt),       CURL_SYM(easy_perform, curl_easy_perform),
    CURL_SYM(easy_getinfo, curl_easy_getinfo),     CURL_SYM(easy_cleanup, curl_easy_cleanup),
    CURL_SYM(easy_strerror, curl_easy_strerror),   CURL_SYM(slist_append, curl_slist_append),
    CURL_SYM(slist_free_all, curl_slist_free_all),
};
#undef CURL_SYM

#define CRYPTO_SYM(field, name)                \
    {                                          \
#name, offsetof(rx__crypto_api, field) \
    }
static const dynlib_sym crypto_syms[] = {
    CRYPTO_SYM(encode_block, EVP_EncodeBlock),
    CRYPTO_SYM(decode_block, EVP_DecodeBlock),
};
#undef CRYPTO_SYM

static dynlib curl_lib = {RX_CURL_SONAME,
                          curl_syms,
                          sizeof(curl_syms) / sizeof(curl_syms[0]),
                          &curl_api,
                          PTHREAD_ONCE_INIT,
                          0,
                          ""};
static dynlib crypto_lib = {RX_CRYPTO_SONAME,
                            crypto_syms,
                            sizeof(crypto_syms) / sizeof(crypto_syms[0]),
                            &crypto_api,
                            PTHREAD_ONCE_INIT,
                            0,
                            ""};

/* dlerror's text, or a stand-in when it has none. */
static const char *
dl_why(void)
{
    const char *e = dlerror();

    return e != NULL ? e : "no reason given";
}

static void
dynlib_load(dynlib *lib)
{
    /* RTLD_LOCAL: its symbols stay out of the program's namespace (the program may link another
     * libcurl or libcrypto of its own). Never dlclose'd: handles and state live on. */
    void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);

    if (h == NULL) {
        (void)snprintf(lib->why, sizeof(lib->why), "cannot load %s: %s", lib->soname, dl_why());
        return;
    }
    for (size_t i = 0; i < lib->n_syms; i++) {
        void *sym;

        (void)dlerror(); /* clear: NULL may be a symbol's value, so dlerror tells */
        sym = dlsym(h, lib->syms[i].name);
        if (sym == NULL) {
            (void)snprintf(lib->why, sizeof(lib->why), "%s has no %s: %s", lib->soname,
                           lib->syms[i].name, dl_why());
            (void)dlclose(h); /* the table stays unused: ok stays 0 */
            return;
        }
        memcpy((char *)lib->table + lib->syms[i].offset, &sym, sizeof(sym));
    }
    lib->ok = 1;
}

static void
curl_load_once(void)
{
    dynlib_load(&curl_lib);
}

static void
crypto_load_once(void)
{
    dynlib_load(&crypto_lib);
}

const rx__curl_api *
rx__curl(const char **out_why)
{
    (void)pthread_once(&curl_lib.once, curl_load_once);
    if (!curl_lib.ok && out_why != NULL)
        *out_why = curl_lib.why;
    return curl_lib.ok ? &curl_api : NULL;
}

const rx__crypto_api *
rx__crypto(const char **out_why)
{
    (void)pthread_once(&crypto_lib.once, crypto_load_once);
    if (!crypto_lib.ok && out_why != NULL)
        *out_why = crypto_lib.why;
    return crypto_lib.ok ? &crypto_api : NULL;
}
