/*
 * argv.h - how a command task's argv and environment are made from the job's work and the
 * task's argument. One rule, used by every place that starts a command task: the local-parallel
 * pool (pool.c) and rxjobd's task supervisor (server/exec_local.c).
 *
 * argv: every "{}" inside an element is replaced by the task's argument; when no element has
 * "{}" and the job has arguments, the argument is appended as a last element (both as GNU
 * parallel does). Environment: the caller's, less every RXJOB_* entry and every name the work
 * sets, plus the work's entries; the task's own RXJOB_* entries are added by the caller.
 */
#ifndef RX_EXEC_ARGV_H
#define RX_EXEC_ARGV_H

#include "rxjob.h"

#include <stddef.h>

/*
 * The task's argv from the work's argv (NULL-terminated) and its argument (NULL when the job has
 * no arguments; its bytes must hold no NUL). *out_argv is NULL-terminated with *out_n elements,
 * each owned; free with rx__strv_free(*out_argv, *out_n). RX_OK; RX_ENOMEM.
 */
rx_err rx__task_argv(const char *const *argv, const rx_buf *arg, char ***out_argv, size_t *out_n);

/* Replace every "{}" in s with arg_len bytes of arg. Owned copy; NULL on ENOMEM. */
char *rx__argv_substitute(const char *s, const char *arg, size_t arg_len);

/* What follows "command not found: 'PROG'" when PROG looks like a shell line (a blank or one of
 * ;|&<>$`'"()* in it): no shell runs a command, so the whole string was taken as one program's
 * name, and the hint says to run it with sh -c. "" otherwise. Static. */
const char *rx__not_found_hint(const char *prog);

/* Free the first n strings of v, then v. NULL-safe. */
void rx__strv_free(char **v, size_t n);

/*
 * The environment every task of a job shares: the entries of base (NULL-terminated, usually
 * environ) that are neither RXJOB_* nor named by extra, then extra's entries (may be NULL).
 * *out_env borrows the strings: free only the array, with rx__free. extra_slots more NULL
 * entries are left at the end for the caller's own entries; *out_n counts the ones filled.
 * RX_OK; RX_ENOMEM.
 */
rx_err rx__env_merge(char *const *base, const char *const *extra, size_t extra_slots,
                     char ***out_env, size_t *out_n);

/* "NAME=value" with value from printf-style fmt, owned; NULL on ENOMEM. */
char *rx__env_entry(const char *name, const char *fmt, ...) RX_PRINTF(2, 3);

#endif
