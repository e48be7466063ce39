/*
 * tcp.h - rxjobd's TCP listener (rxjobd --listen HOST:PORT): the address, the listening socket,
 * and the TLS certificate and key it serves with (rxjobd --tls-cert, --tls-key). Who may listen
 * where is main.c's rule (rxjobd(8) "OVER THE NETWORK"); the tokens are auth.h's.
 */
#ifndef RX_SERVER_TCP_H
#define RX_SERVER_TCP_H

#include "rxjob.h"

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#define TCP_URL_LEN 80 /* "https://[" IPv6 "]:65535" and a NUL fit */

/* A parsed --listen address. */
typedef struct tcp_addr {
    struct sockaddr_storage sa; /* AF_INET or AF_INET6 */
    socklen_t sa_len;
    int is_loopback;             /* 127.0.0.0/8, ::1, or ::ffff:127.0.0.0/104 */
    char host[INET6_ADDRSTRLEN]; /* the address as written, without brackets */
    int port;                    /* 0..65535; 0 = any free port (tcp_listen sets the real one) */
} tcp_addr;

/*
 * Parse "HOST:PORT": HOST is a numeric IPv4 address ("127.0.0.1", "0.0.0.0") or a numeric IPv6
 * address in brackets ("[::1]", "[::]"); no name is looked up (an address that depended on DNS
 * could change what the daemon exposes). PORT is 0..65535, 0 = any free port. RX_OK; RX_EINVAL
 * with the reason in errbuf.
 */
rx_err tcp_parse_listen(const char *spec, tcp_addr *out_addr, char *errbuf, size_t errlen);

/*
 * Bind and listen on addr (SO_REUSEADDR, IPV6_V6ONLY for IPv6, close-on-exec); a port of 0 is
 * replaced with the one the kernel chose. RX_OK with *out_fd; RX_ESYSTEM (errbuf says which call
 * failed, errno kept).
 */
rx_err tcp_listen(tcp_addr *addr, int *out_fd, char *errbuf, size_t errlen);

/* "https://127.0.0.1:8443", "http://[::1]:8080" (tls: 1 for https). */
void tcp_url(const tcp_addr *addr, int tls, char *buf, size_t len);

/*
 * Read a PEM file whole (at most 1 MiB) into a NUL-terminated buffer (*out_pem, rx__malloc'd;
 * free with tcp_pem_free, which wipes it first). what names it in messages ("certificate").
 * RX_OK; RX_EIO; RX_ETOOBIG; RX_ENOMEM.
 */
rx_err tcp_read_pem(const char *path, const char *what, char **out_pem, char *errbuf,
                    size_t errlen);

/* Wipe and free a buffer of tcp_read_pem. NULL-safe. */
void tcp_pem_free(char *pem);

/*
 * Check before serving that cert_pem holds a certificate, key_pem a private key, and that the
 * key belongs to the certificate (libcrypto), so a wrong pair is refused at start with a clear
 * message rather than by each TLS handshake. RX_OK; RX_EINVAL with the reason in errbuf.
 */
rx_err tcp_check_tls(const char *cert_pem, const char *key_pem, char *errbuf, size_t errlen);

#endif
