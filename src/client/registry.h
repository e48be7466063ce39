/*
 * registry.h - C functions registered by name (RX_FUNCTION, rx_register_function), so that a
 * task started by rxjobd in another process can find its function again (rx_init).
 */
#ifndef RX_CLIENT_REGISTRY_H
#define RX_CLIENT_REGISTRY_H

#include "rxjob.h"

#include <stddef.h>

/* The longest registered name, in bytes (without its NUL). */
#define RX__FUNCTION_NAME_MAX 128

/* 1 if name is 1..RX__FUNCTION_NAME_MAX bytes of [A-Za-z0-9_.-], else 0. */
int rx__function_name_ok(const char *name);

/* The function registered as name, or NULL. */
rx_function *rx__registry_find(const char *name);

/* The name fn is registered under (the latest registration wins), or NULL. Borrowed until the
 * next registration. */
const char *rx__registry_name_of(rx_function *fn);

#endif
