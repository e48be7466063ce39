/*
 * tcp.c - the TCP listener's address, socket, and TLS files (tcp.h).
 */
#define _GNU_SOURCE /* O_CLOEXEC with fopen's "e" is not POSIX; we use open */

#include "server/tcp.h"

#include "core/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TCP_BACKLOG       128               /* listen(2) backlog */
#define TCP_PEM_MAX_BYTES ((size_t)1 << 20) /* a certificate chain or key file, bytes */

rx_err
tcp_parse_listen(const char *spec, tcp_addr *out_addr, char *errbuf, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon;
    const char *port_s;
    size_t host_len;
    int64_t port;
    tcp_addr a;

    memset(&a, 0, sizeof(a));
    if (spec == NULL || spec[0] == '\0') {
        (void)snprintf(errbuf, errlen, "--listen: empty address (HOST:PORT)");
        return RX_EINVAL;
    }
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');

        if (close == NULL || close[1] != ':') {
            (void)snprintf(errbuf, errlen,
                           "--listen '%s': an IPv6 address is written [ADDRESS]:PORT", spec);
            return RX_EINVAL;
        }
        host_len = (size_t)(close - spec - 1);
        if (host_len == 0 || host_len >= sizeof(host)) {
            (void)snprintf(errbuf, errlen, "--listen '%s': not an IPv6 address", spec);
            return RX_EINVAL;
        }
        memcpy(host, spec + 1, host_len);
        host[host_len] = '\0';
        port_s = close + 2;
        {
            struct sockaddr_in6 *sa6 = (struct sockaddr_in6 *)&a.sa;

            if (inet_pton(AF_INET6, host, &sa6->sin6_addr) != 1) {
                (void)snprintf(errbuf, errlen, "--listen '%s': '%s' is not a numeric IPv6 address",
                               spec, host);
                return RX_EINVAL;
            }
            sa6->sin6_family = AF_INET6;
            a.sa_len = sizeof(*sa6);
            a.is_loopback =
                IN6_IS_ADDR_LOOPBACK(&sa6->sin6_addr) ||
                (IN6_IS_ADDR_V4MAPPED(&sa6->sin6_addr) && sa6->sin6_addr.s6_addr[12] == 127);
        }
    } else {
        colon = strrchr(spec, ':');
        if (colon == NULL) {
            (void)snprintf(errbuf, errlen, "--listen '%s': no port (HOST:PORT)", spec);
            return RX_EINVAL;
        }
        host_len = (size_t)(colon - spec);
        if (host_len == 0 || host_len >= sizeof(host) || memchr(spec, ':', host_len) != NULL) {
            (void)snprintf(errbuf, errlen,
                           "--listen '%s': not IPV4:PORT or [IPV6]:PORT (an IPv6 address goes in "
                           "brackets)",
                           spec);
            return RX_EINVAL;
        }
        memcpy(host, spec, host_len);
        host[host_len] = '\0';
        port_s = colon + 1;
        {
            struct sockaddr_in *sa4 = (struct sockaddr_in *)&a.sa;

            if (inet_pton(AF_INET, host, &sa4->sin_addr) != 1) {
                (void)snprintf(errbuf, errlen,
                               "--listen '%s': '%s' is not a numeric IPv4 address (names are not "
                               "looked up)",
                               spec, host);
                return RX_EINVAL;
            }
            sa4->sin_family = AF_INET;
            a.sa_len = sizeof(*sa4);
            a.is_loopback = ((const unsigned char *)&sa4->sin_addr)[0] == 127;
        }
    }
    /* Digits only: rx__parse_i64 alone would take a sign. */
    if (port_s[0] == '\0' || strspn(port_s, "0123456789") != strlen(port_s) ||
        rx__parse_i64(port_s, 0, 65535, &port) != RX_OK) {
        (void)snprintf(errbuf, errlen, "--listen '%s': the port is not a number from 0 to 65535",
                       spec);
        return RX_EINVAL;
    }
    a.port = (int)port;
    if (a.sa.ss_family == AF_INET)
        ((struct sockaddr_in *)&a.sa)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)&a.sa)->sin6_port = htons((uint16_t)port);
    /* The canonical text of the address ("::1" for "[0:0::1]"). */
    if (inet_ntop(a.sa.ss_family,
                  a.sa.ss_family == AF_INET
                      ? (const void *)&((struct sockaddr_in *)&a.sa)->sin_addr
                      : (const void *)&((struct sockaddr_in6 *)&a.sa)->sin6_addr,
                  a.host, sizeof(a.host)) == NULL)
        a.host[0] = '\0';
    *out_addr = a;
    return RX_OK;
}

rx_err
tcp_listen(tcp_addr *addr, int *out_fd, char *errbuf, size_t errlen)
{
    char url[TCP_URL_LEN];
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof(bound);
    int one = 1;
    int saved;
    int fd;

    tcp_url(addr, 0, url, sizeof(url));
    fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        saved = errno;
        (void)snprintf(errbuf, errlen, "socket failed: %s", strerror(saved));
        errno = saved;
        return RX_ESYSTEM;
    }
    /* A restarted daemon may bind while the old connections are in TIME_WAIT. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (addr->sa.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)) {
        saved = errno;
        (void)snprintf(errbuf, errlen, "setsockopt failed: %s", strerror(saved));
        goto fail;
    }
    if (bind(fd, (const struct sockaddr *)&addr->sa, addr->sa_len) != 0) {
        saved = errno;
        (void)snprintf(errbuf, errlen, "bind %s failed: %s", url + strlen("http://"),
                       strerror(saved));
        goto fail;
    }
    if (listen(fd, TCP_BACKLOG) != 0) {
        saved = errno;
        (void)snprintf(errbuf, errlen, "listen %s failed: %s", url + strlen("http://"),
                       strerror(saved));
        goto fail;
    }
    if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) == 0) {
        if (bound.ss_family == AF_INET)
            addr->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        else if (bound.ss_family == AF_INET6)
            addr->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    }
    *out_fd = fd;
    return RX_OK;

fail:
    (void)close(fd);
    errno = saved;
    return RX_ESYSTEM;
}

void
tcp_url(const tcp_addr *addr, int tls, char *buf, size_t len)
{
    int v6 = addr->sa.ss_family == AF_INET6;

    (void)snprintf(buf, len, "%s://%s%s%s:%d", tls ? "https" : "http", v6 ? "[" : "", addr->host,
                   v6 ? "]" : "", addr->port);
}

void
tcp_pem_free(char *pem)
{
    if (pem == NULL)
        return;
    OPENSSL_cleanse(pem, strlen(pem));
    rx__free(pem);
}

rx_err
tcp_read_pem(const char *path, const char *what, char **out_pem, char *errbuf, size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    rx_err err = RX_OK;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        (void)snprintf(errbuf, errlen, "%s '%s': %s", what, path, strerror(errno));
        return RX_EIO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        (void)snprintf(errbuf, errlen, "%s '%s' is not a regular file", what, path);
        err = RX_EIO;
        goto done;
    }
    if ((uint64_t)st.st_size > TCP_PEM_MAX_BYTES) {
        (void)snprintf(errbuf, errlen, "%s '%s' is over %zu bytes", what, path, TCP_PEM_MAX_BYTES);
        err = RX_ETOOBIG;
        goto done;
    }
    buf = rx__malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        (void)snprintf(errbuf, errlen, "out of memory");
        err = RX_ENOMEM;
        goto done;
    }
    {
        long got = rx__read_full(fd, buf, (size_t)st.st_size);

        if (got < 0) {
            (void)snprintf(errbuf, errlen, "%s '%s': read failed: %s", what, path, strerror(errno));
            err = RX_EIO;
            goto done;
        }
        len = (size_t)got;
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        (void)snprintf(errbuf, errlen, "%s '%s' holds a NUL byte: not PEM", what, path);
        err = RX_EINVAL;
        goto done;
    }
    *out_pem = buf;
    buf = NULL;

done:
    if (buf != NULL) {
        OPENSSL_cleanse(buf, len);
        rx__free(buf);
    }
    (void)close(fd);
    return err;
}

/* An encrypted key is refused, never asked a passphrase for (libcrypto's default callback would
 * prompt on the terminal). */
static int
no_passphrase(char *buf, int size, int rwflag, void *user)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)user;
    return -1;
}

/* libcrypto's first queued error as text, or fallback. */
static const char *
ssl_reason(char *buf, size_t len, const char *fallback)
{
    unsigned long e = ERR_get_error();

    ERR_clear_error();
    if (e == 0)
        return fallback;
    ERR_error_string_n(e, buf, len);
    return buf;
}

rx_err
tcp_check_tls(const char *cert_pem, const char *key_pem, char *errbuf, size_t errlen)
{
    char why[256];
    BIO *bio = NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    rx_err err = RX_EINVAL;

    ERR_clear_error();
    bio = BIO_new_mem_buf(cert_pem, -1);
    if (bio != NULL)
        cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (cert == NULL) {
        (void)snprintf(errbuf, errlen, "--tls-cert: no PEM certificate in it (%s)",
                       ssl_reason(why, sizeof(why), "no BEGIN CERTIFICATE block"));
        goto done;
    }
    bio = BIO_new_mem_buf(key_pem, -1);
    if (bio != NULL)
        key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (key == NULL) {
        (void)snprintf(errbuf, errlen, "--tls-key: no unencrypted PEM private key in it (%s)",
                       ssl_reason(why, sizeof(why), "no BEGIN PRIVATE KEY block"));
        goto done;
    }
    if (X509_check_private_key(cert, key) != 1) {
        (void)snprintf(errbuf, errlen,
                       "--tls-key does not belong to the certificate of --tls-cert (%s)",
                       ssl_reason(why, sizeof(why), "key mismatch"));
        goto done;
    }
    err = RX_OK;

done:
    EVP_PKEY_free(key);
    X509_free(cert);
    ERR_clear_error();
    return err;
}
