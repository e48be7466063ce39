/*
 * cli.h - what the rxjob command line's files share: exit statuses, global options, the option
 * parser, the checked number parsers, error reporting and JSON output.
 *
 * The CLI is built on the public API only (rxjob.h), as curl's tool is built on libcurl: it never
 * touches the store or speaks HTTP itself. main.c parses the global options and hands the rest of
 * the command line to one cmd_<verb> function (cmd_<verb>.c); each returns the process's exit
 * status, one of cli_exit below, which docs/rxjob.1 documents.
 */
#ifndef RX_CLI_CLI_H
#define RX_CLI_CLI_H

#include "rxjob.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses: stable, documented in docs/rxjob.1 (EXIT STATUS). */
enum cli_exit {
    CLI_EXIT_OK = 0,           /* success; the job FINISHED */
    CLI_EXIT_FAILED = 1,       /* the job FAILED (some task failed); a refused cancel */
    CLI_EXIT_USAGE = 2,        /* bad command line or input (RX_EINVAL, RX_ECOUNT, RX_ETOOBIG) */
    CLI_EXIT_UNREACHABLE = 3,  /* the daemon cannot be reached (RX_ECONTEXT) */
    CLI_EXIT_CANCELED = 4,     /* the job was CANCELED */
    CLI_EXIT_UNDETERMINED = 5, /* the job is UNDETERMINED: unknown, cleaned up, results gone */
    CLI_EXIT_TIMEOUT = 6,      /* the wait timed out */
    CLI_EXIT_NOTFINISHED = 7,  /* results asked for before the job was over */
    CLI_EXIT_ERROR = 8,        /* anything else: out of memory, I/O, store or system error */
    CLI_EXIT_LIMIT = 9         /* a per-user limit of the daemon was reached (RX_ELIMIT): the
                                  same command can pass later, once some of your jobs end */
};

/* The global options and the context they select; one per process. */
typedef struct cli {
    const char *url; /* --url; NULL = $RXJOB_URL, else the per-user daemon (the library honours
                        $RXJOB_SOCKET): read it with cli_url */
    const char *token_file; /* --token-file: the token for an https url; NULL = the library's
                               $RXJOB_TOKEN or $RXJOB_TOKEN_FILE */
    int token_said;         /* the warning that --token-file is not used was printed */
    int json;               /* --json: machine-readable output */
    rx_context *ctx;        /* opened by cli_context on first use; freed by main */
    int warned;             /* the library logged a warning (set by the log sink) */
    char *captured;         /* non-NULL: the log sink keeps the library's first error message
                               here (captured_len bytes) instead of printing it, so that the
                               CLI can say it once, in its own words (cli_open_failed) */
    size_t captured_len;
    /* non-NULL: the log sink hands the library's warnings to it first; it returns 1 when it
       has said the warning in the CLI's words, 0 to have it printed as it is */
    int (*on_warning)(struct cli *c, const char *msg);
} cli;

/* One option a subcommand takes ("--name" or "--name VALUE"). Tables end with {NULL, 0, 0}. */
typedef struct cli_opt {
    const char *name; /* the long name, without "--" */
    int has_arg;      /* 1: takes a value ("--name VALUE" or "--name=VALUE") */
    int id;           /* what cli_next_opt returns for it; > 0 */
} cli_opt;

/* What cli_next_opt returns besides an option's id. */
enum {
    CLI_OPT_END = 0,      /* no more arguments, or options stop (see stop_at_operand) */
    CLI_OPT_OPERAND = -1, /* *out_arg is an operand (not an option) */
    CLI_OPT_HELP = -2,    /* --help or -h */
    CLI_OPT_BAD = -3      /* bad option; the message is printed: exit CLI_EXIT_USAGE */
};

/* Walks a subcommand's arguments. Global options (--url, --token-file, --json) are accepted
 * anywhere. */
typedef struct cli_parser {
    int argc;
    char **argv;
    int next;            /* index of the next argument to look at */
    const char *cmd;     /* the subcommand, for messages */
    int stop_at_operand; /* 1: the first operand ends the options (rxjob exec's COMMAND) */
    int after_dashes;    /* "--" was seen: everything else is an operand */
} cli_parser;

void cli_parser_init(cli_parser *p, const char *cmd, int argc, char **argv, int stop_at_operand);

/*
 * The arguments of a subcommand that takes one job id and no option of its own ("status ID",
 * "cancel ID"): CLI_EXIT_OK with *out_id_arg set; CLI_EXIT_OK with *out_id_arg NULL when --help
 * printed usage (nothing more to do); or the exit status of a usage error, already reported.
 * p is initialised here and names the subcommand (p->cmd) afterwards.
 */
int cli_parse_one_id(cli *c, cli_parser *p, int argc, char **argv, const char *usage,
                     const char **out_id_arg);

/*
 * The next option: its id, with *out_arg its value (or NULL); CLI_OPT_OPERAND with *out_arg the
 * operand; CLI_OPT_HELP; CLI_OPT_END; or CLI_OPT_BAD after printing why. With stop_at_operand,
 * CLI_OPT_END leaves p->next at the first operand (after a "--", if any).
 */
int cli_next_opt(cli_parser *p, cli *c, const cli_opt *opts, const char **out_arg);

/* Print "rxjob: CMD: <printf message>" on stderr, then "Try 'rxjob CMD --help'"; returns
 * CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) RX_PRINTF(2, 3);

/*
 * The checked number parsers (atoi and friends are banned): the whole string must be a decimal
 * number within [min, max]. cli_parse_i64 takes integers only; cli_parse_seconds also takes a
 * fraction ("1.5"). On failure they print "rxjob: CMD: WHAT: 'S' is not ..." and return -1;
 * 0 on success.
 */
int cli_parse_i64(const char *cmd, const char *what, const char *s, int64_t min, int64_t max,
                  int64_t *out_value);
int cli_parse_seconds(const char *cmd, const char *what, const char *s, double min, double max,
                      double *out_value);

/*
 * The daemon's url: --url, else $RXJOB_URL, else NULL (the per-user daemon). With --token-file,
 * it also makes that file the token's source for the library (RXJOB_TOKEN_FILE, over any
 * RXJOB_TOKEN). Call before the library opens the url.
 */
const char *cli_url(cli *c);

/* The longest library message cli_capture_begin keeps, in bytes with the NUL. */
#define CLI_CAPTURE_MAX 1024

/* Keep the library's next error message in buf (CLI_CAPTURE_MAX bytes) instead of printing it,
 * until cli_capture_end. For the calls that open a url, whose failure has no context to hold
 * its detail (rx_server_context, rx_daemon_get_info, rx_daemon_stop). */
void cli_capture_begin(cli *c, char *buf);
void cli_capture_end(cli *c);

/*
 * Report, in one line, that opening the daemon's url failed with err; why is the library's
 * message kept by cli_capture_begin ("" if none). RX_EINVAL (the url is malformed): the url, where
 * it came from (--url or RXJOB_URL), what is wrong and the forms it takes; exit CLI_EXIT_USAGE.
 * Otherwise (a token that cannot be used, ...): the library's message, naming --token-file where
 * the token file came from it; cli_exit_for_err(err).
 */
int cli_open_failed(cli *c, const char *cmd, rx_err err, const char *why);

/* The server context of --url (opened once). On failure prints why and returns the exit status;
 * 0 on success. */
int cli_context(cli *c, const char *cmd, rx_context **out_ctx);

/* Parse a job id operand and open a handle on it. Returns 0, or an exit status after printing. */
int cli_job_open(cli *c, const char *cmd, const char *id_arg, rx_job **out_job);

/* The exit status for a library error, and for a job's status (FINISHED and the live ones: 0). */
int cli_exit_for_err(rx_err err);
int cli_exit_for_status(rx_job_status status);

/*
 * Report a failed library call: "rxjob: WHAT: <rx_strerror>[: <rx_context_errmsg>]" on stderr.
 * Returns cli_exit_for_err(err).
 */
int cli_fail(cli *c, const char *what, rx_err err);

/*
 * Say on stderr why a job reads UNDETERMINED: "rxjob: WHAT: no such job: collected (with
 * auto-cleanup), cleaned up, or never submitted (UNDETERMINED)". The same line for a job of
 * another user's (in system mode the daemon answers for it as for an unknown id). Returns
 * CLI_EXIT_UNDETERMINED.
 */
int cli_no_such_job(const char *what);

/* Report an error that is not the library's: "rxjob: <printf message>" on stderr. The message
 * goes through cli_fputs_display (it may quote a task's error text or a daemon's reason). */
void cli_error(const char *fmt, ...) RX_PRINTF(1, 2);

/*
 * Write s to f for a person to read: valid UTF-8, newlines and tabs as they are; every other
 * control byte (C0, DEL, the C1 controls U+0080..U+009F) and every byte that is not part of a
 * valid UTF-8 sequence as the four characters \xNN, so that a task's or a daemon's text cannot
 * drive the terminal (colour, cursor, title) or hide itself. Used for messages and task errors,
 * never for a task's output or values, which rxjob prints raw (docs/rxjob.1 "BYTES").
 */
void cli_fputs_display(const char *s, FILE *f);

/* 1 if stderr is a terminal (progress lines are drawn only there). */
int cli_stderr_is_tty(void);

/*
 * The job's status and task counts now (one request). An unknown or cleaned-up job reads
 * UNDETERMINED with zero counts and RX_OK; other failures return their code.
 */
rx_err cli_job_poll(rx_job *job, rx_job_status *out_status, rx_job_progress *out_progress);

/*
 * Wait for the job to be over, at most timeout_s seconds (< 0 = forever), redrawing the progress
 * line "job ID: DONE/TOTAL tasks done" on stderr when stderr is a terminal. On RX_OK and
 * RX_ETIMEDOUT *out_status and *out_progress hold the status and counts at the end.
 */
rx_err cli_wait_job(rx_job *job, double timeout_s, rx_job_status *out_status,
                    rx_job_progress *out_progress);

/*
 * Collect the job's results and print them: on stdout each task's value in task order, raw, each
 * followed by a newline unless it ends with one; on stderr "task N: ERROR: message" for each
 * failed task. With --json, one object {"job": ..., "slots": [...]} instead. keep: leave the
 * artifacts (auto_cleanup off for this call). Returns the exit status.
 */
int cli_print_results(cli *c, const char *what, rx_job *job, int keep);

/* JSON output (jansson). Every builder returns NULL only when out of memory. */
json_t *cli_json_job(int64_t id, rx_job_status status, const rx_job_progress *progress);
json_t *cli_json_string(const char *s);                /* invalid UTF-8 bytes become U+FFFD */
json_t *cli_json_base64(const void *data, size_t len); /* standard base64 with padding */
/* Print value on stdout, one document followed by a newline, and drop the reference. Returns 0,
 * or CLI_EXIT_ERROR (with a message) if value is NULL or writing failed. */
int cli_json_print(json_t *value);

/* The subcommands: argv[0] is the subcommand's name. Each returns the exit status. */
int cmd_exec(cli *c, int argc, char **argv);
int cmd_status(cli *c, int argc, char **argv);
int cmd_wait(cli *c, int argc, char **argv);
int cmd_results(cli *c, int argc, char **argv);
int cmd_output(cli *c, int argc, char **argv);
int cmd_cancel(cli *c, int argc, char **argv);
int cmd_cleanup(cli *c, int argc, char **argv);
int cmd_jobs(cli *c, int argc, char **argv);
int cmd_daemon(cli *c, int argc, char **argv);

#endif
