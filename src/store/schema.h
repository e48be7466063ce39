/*
 * schema.h - the job store's schema version and its migrations (see schema.c for the tables and
 * the upgrade procedure).
 */
#ifndef RX_STORE_SCHEMA_H
#define RX_STORE_SCHEMA_H

#include "rxjob.h"

#include <sqlite3.h>
#include <stddef.h>

/* The schema version this build writes and reads (PRAGMA user_version). */
#define STORE_SCHEMA_VERSION 3

/* Bring db to STORE_SCHEMA_VERSION: create the tables in an empty database, apply each
 * migration in turn to an older one, refuse a newer one. RX_OK; RX_ESTORE with why in errbuf. */
rx_err store_schema_migrate(sqlite3 *db, char *errbuf, size_t errlen);

#endif
