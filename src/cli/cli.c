/*
 * cli.c - the pieces every rxjob subcommand uses: the option parser, the checked number
 * parsers, the mapping from library errors and job statuses to exit statuses, error messages,
 * waiting with a progress line, printing results, and JSON output.
 *
 * Options are parsed here rather than with getopt_long, which is a GNU extension: the project
 * builds with _POSIX_C_SOURCE only, and the parser is small. It takes "--name VALUE",
 * "--name=VALUE", "-h", operands anywhere (except for rxjob exec, whose first operand starts the
 * COMMAND), and "--" to end the options.
 *
 * JSON goes through jansson, which the library already depends on: byte values are base64
 * (docs/protocol.md "Bytes"), and text that is not UTF-8 (an error message quoting a file name,
 * say) has its bad bytes replaced, since a JSON string must be UTF-8.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Options every subcommand takes, besides --help. */
enum { GLOBAL_URL = 1000, GLOBAL_JSON, GLOBAL_TOKEN_FILE, GLOBAL_SYSTEM };

/* --system: the system-wide daemon (rxjobd --system), never started by rxjob. */
#define SYSTEM_URL "unix:/run/rxjob/rxjobd.sock"

static const cli_opt global_opts[] = {
    {"url", 1, GLOBAL_URL},
    {"token-file", 1, GLOBAL_TOKEN_FILE},
    {"json", 0, GLOBAL_JSON},
    {"system", 0, GLOBAL_SYSTEM},
    {NULL, 0, 0},
};

/* How long one slice of a waiting loop may block, in seconds: the progress line's refresh. */
#define PROGRESS_SLICE_S 1.0

void
cli_parser_init(cli_parser *p, const char *cmd, int argc, char **argv, int stop_at_operand)
{
    memset(p, 0, sizeof(*p));
    p->argc = argc;
    p->argv = argv;
    p->next = 1; /* argv[0] is the subcommand (or the program) */
    p->cmd = cmd;
    p->stop_at_operand = stop_at_operand;
}

static const cli_opt *
find_opt(const cli_opt *opts, const char *name, size_t name_len)
{
    for (; opts != NULL && opts->name != NULL; opts++) {
        if (strlen(opts->name) == name_len && memcmp(opts->name, name, name_len) == 0)
            return opts;
    }
    return NULL;
}

/* Edits (insert, delete, substitute, swap two neighbours) from a[0..na) to b[0..nb), counted up
 * to SUGGEST_MAX_EDITS + 1; names longer than SUGGEST_MAX_LEN count as far. */
#define SUGGEST_MAX_EDITS 2
#define SUGGEST_MAX_LEN   32

static size_t
edit_distance(const char *a, size_t na, const char *b, size_t nb)
{
    size_t d[SUGGEST_MAX_LEN + 1][SUGGEST_MAX_LEN + 1];

    if (na > SUGGEST_MAX_LEN || nb > SUGGEST_MAX_LEN)
        return SUGGEST_MAX_EDITS + 1;
    for (size_t i = 0; i <= na; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= nb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= na; i++) {
        for (size_t j = 1; j <= nb; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);

            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[na][nb];
}

/* The option of opts or global_opts closest to name (as git suggests a command): at most
 * SUGGEST_MAX_EDITS edits away, and fewer than half its length; NULL when none is. */
static const char *
suggest_opt(const cli_opt *opts, const char *name, size_t name_len)
{
    /* Peers' names for ours, before spelling: Slurm's --time is a time limit, not --times. */
    static const char *const peer_names[][2] = {{"time", "timeout"}};
    const cli_opt *lists[2] = {opts, global_opts};
    const char *best = NULL;
    size_t best_d = SUGGEST_MAX_EDITS + 1;

    for (size_t k = 0; k < sizeof(peer_names) / sizeof(peer_names[0]); k++) {
        if (strlen(peer_names[k][0]) == name_len && memcmp(peer_names[k][0], name, name_len) == 0 &&
            find_opt(opts, peer_names[k][1], strlen(peer_names[k][1])) != NULL)
            return peer_names[k][1];
    }
    for (size_t l = 0; l < 2; l++) {
        for (const cli_opt *o = lists[l]; o != NULL && o->name != NULL; o++) {
            size_t d = edit_distance(name, name_len, o->name, strlen(o->name));

            if (d < best_d && 2 * d < strlen(o->name)) {
                best = o->name;
                best_d = d;
            }
        }
    }
    return best;
}

int
cli_next_opt(cli_parser *p, cli *c, const cli_opt *opts, const char **out_arg)
{
    *out_arg = NULL;
    for (;;) {
        const char *a;
        const char *name;
        const char *eq;
        const char *value = NULL;
        const cli_opt *o;
        size_t name_len;

        if (p->next >= p->argc)
            return CLI_OPT_END;
        a = p->argv[p->next];
        if (p->after_dashes || a[0] != '-' || a[1] == '\0') { /* "-" alone is an operand */
            if (p->stop_at_operand)
                return CLI_OPT_END;
            p->next++;
            *out_arg = a;
            return CLI_OPT_OPERAND;
        }
        p->next++;
        if (strcmp(a, "--") == 0) {
            if (p->stop_at_operand)
                return CLI_OPT_END;
            p->after_dashes = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return CLI_OPT_HELP;
        if (a[1] != '-') {
            (void)cli_usage_error(p->cmd, "unknown option '%s'", a);
            return CLI_OPT_BAD;
        }
        name = a + 2;
        eq = strchr(name, '=');
        name_len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        o = find_opt(opts, name, name_len);
        if (o == NULL)
            o = find_opt(global_opts, name, name_len);
        if (o == NULL) {
            const char *near = suggest_opt(opts, name, name_len);

            if (near != NULL)
                (void)cli_usage_error(p->cmd, "unknown option '--%.*s'; did you mean '--%s'?",
                                      (int)name_len, name, near);
            else
                (void)cli_usage_error(p->cmd, "unknown option '--%.*s'", (int)name_len, name);
            return CLI_OPT_BAD;
        }
        if (o->has_arg) {
            if (eq != NULL) {
                value = eq + 1;
            } else if (p->next < p->argc) {
                value = p->argv[p->next++];
            } else {
                (void)cli_usage_error(p->cmd, "option '--%s' needs a value", o->name);
                return CLI_OPT_BAD;
            }
        } else if (eq != NULL) {
            (void)cli_usage_error(p->cmd, "option '--%s' takes no value", o->name);
            return CLI_OPT_BAD;
        }
        if (o->id == GLOBAL_URL) {
            c->url = value;
            continue;
        }
        if (o->id == GLOBAL_JSON) {
            c->json = 1;
            continue;
        }
        if (o->id == GLOBAL_TOKEN_FILE) {
            if (value[0] == '\0') { /* the library would read it as no token file at all */
                (void)cli_usage_error(p->cmd, "option '--token-file' needs a file name");
                return CLI_OPT_BAD;
            }
            c->token_file = value;
            continue;
        }
        if (o->id == GLOBAL_SYSTEM) {
            c->url = SYSTEM_URL;
            continue;
        }
        *out_arg = value;
        return o->id;
    }
}

static void vprint_display(const char *fmt, va_list ap);

int
cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    (void)fflush(stdout);
    if (cmd != NULL)
        (void)fprintf(stderr, "rxjob: %s: ", cmd);
    else
        (void)fputs("rxjob: ", stderr);
    va_start(ap, fmt);
    vprint_display(fmt, ap);
    va_end(ap);
    if (cmd != NULL)
        (void)fprintf(stderr, "\nTry 'rxjob %s --help'.\n", cmd);
    else
        (void)fputs("\nTry 'rxjob --help'.\n", stderr);
    return CLI_EXIT_USAGE;
}

static size_t utf8_len(const unsigned char *s);

void
cli_fputs_display(const char *s, FILE *f)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p != '\0') {
        size_t n = utf8_len(p);
        int control = n == 1 ? (*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f
                             : n == 2 && p[0] == 0xC2 && p[1] < 0xA0; /* U+0080..U+009F */

        if (n == 0 || control) {
            /* An escaped C1 control is two bytes: both are written as \xNN. */
            size_t bytes = n == 0 ? 1 : n;

            for (size_t i = 0; i < bytes; i++)
                (void)fprintf(f, "\\x%02x", p[i]);
            p += bytes;
        } else {
            (void)fwrite(p, 1, n, f);
            p += n;
        }
    }
}

/* Format a message and write it to stderr through cli_fputs_display. */
static void
vprint_display(const char *fmt, va_list ap)
{
    char small[512];
    char *msg = small;
    va_list again;
    int n;

    va_copy(again, ap);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    if (n >= (int)sizeof(small)) {
        msg = malloc((size_t)n + 1);
        if (msg != NULL)
            (void)vsnprintf(msg, (size_t)n + 1, fmt, again);
        else
            msg = small; /* cut short, but said */
    } else if (n < 0) {
        small[0] = '\0';
    }
    va_end(again);
    cli_fputs_display(msg, stderr);
    if (msg != small)
        free(msg);
}

void
cli_error(const char *fmt, ...)
{
    va_list ap;

    (void)fflush(stdout);
    (void)fputs("rxjob: ", stderr);
    va_start(ap, fmt);
    vprint_display(fmt, ap);
    va_end(ap);
    (void)fputc('\n', stderr);
}

static int
is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

int
cli_parse_i64(const char *cmd, const char *what, const char *s, int64_t min, int64_t max,
              int64_t *out_value)
{
    const char *digits = s;
    char *end = NULL;
    long long value;

    /* The shape first: an optional '-', then digits only (strtoll alone would take " 12",
     * "+12" and "0x12" in base 0). */
    if (*digits == '-' && min < 0)
        digits++;
    if (*digits == '\0')
        goto bad;
    for (const char *q = digits; *q != '\0'; q++) {
        if (!is_digit(*q))
            goto bad;
    }
    errno = 0;
    value = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || value < min || value > max)
        goto bad;
    *out_value = value;
    return 0;

bad:
    (void)cli_usage_error(cmd, "%s: '%s' is not an integer from %lld to %lld", what, s,
                          (long long)min, (long long)max);
    return -1;
}

int
cli_parse_seconds(const char *cmd, const char *what, const char *s, double min, double max,
                  double *out_value)
{
    const char *q = s;
    char *end = NULL;
    double value;

    /* Digits, then optionally '.' and digits: no sign, exponent, "inf" or "nan". */
    if (!is_digit(*q))
        goto bad;
    while (is_digit(*q))
        q++;
    if (*q == '.') {
        q++;
        if (!is_digit(*q))
            goto bad;
        while (is_digit(*q))
            q++;
    }
    if (*q != '\0')
        goto bad;
    errno = 0;
    value = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(value) || value < min || value > max)
        goto bad;
    *out_value = value;
    return 0;

bad:
    (void)cli_usage_error(cmd, "%s: '%s' is not a number of seconds from %.15g to %.15g", what, s,
                          min, max);
    return -1;
}

const char *
cli_url(cli *c)
{
    const char *env, *url;

    /* The library reads the token from the environment (rxjob.h rx_server_context); the CLI is
     * built on the public API only, so --token-file is said there. */
    if (c->token_file != NULL) {
        if (setenv("RXJOB_TOKEN_FILE", c->token_file, 1) != 0 || unsetenv("RXJOB_TOKEN") != 0)
            cli_error("--token-file: setenv failed: %s", strerror(errno));
    }
    env = getenv("RXJOB_URL");
    url = c->url != NULL ? c->url : env != NULL && env[0] != '\0' ? env : NULL;
    /* A token is sent over https only: a Unix socket's daemon knows its client by uid. */
    if (c->token_file != NULL && !c->token_said && (url == NULL || strncmp(url, "unix:", 5) == 0)) {
        c->token_said = 1;
        (void)fprintf(stderr,
                      "rxjob: warning: --token-file is not used with a Unix socket (the daemon "
                      "there knows you by your uid); it is for an https:// --url\n");
    }
    return url;
}

void
cli_capture_begin(cli *c, char *buf)
{
    buf[0] = '\0';
    c->captured = buf;
    c->captured_len = CLI_CAPTURE_MAX;
}

void
cli_capture_end(cli *c)
{
    c->captured = NULL;
    c->captured_len = 0;
}

/* The forms a daemon's address takes, for messages. */
#define URL_FORMS "unix:/path/to/socket or https://HOST:PORT"

int
cli_open_failed(cli *c, const char *cmd, rx_err err, const char *why)
{
    static const char *const prefixes[] = {"server context: ", "daemon: "};
    const char *env = getenv("RXJOB_URL");
    const char *url = c->url != NULL ? c->url : env != NULL && env[0] != '\0' ? env : NULL;
    const char *source = c->url != NULL ? "--url" : "RXJOB_URL";
    char head[64];
    int n;

    /* The library's message names the call it came from; the CLI names the command instead. */
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        if (strncmp(why, prefixes[i], strlen(prefixes[i])) == 0)
            why += strlen(prefixes[i]);
    }
    if (err == RX_EINVAL && url != NULL) {
        /* What is wrong, then the forms the url takes: one line. */
        if (url[0] == '/' || url[0] == '.') {
            cli_error("%s: %s '%s': a socket path needs the unix: scheme (%sunix:%s); %s "
                      "takes " URL_FORMS,
                      cmd, source, url, c->url != NULL ? "--url " : "RXJOB_URL=", url, source);
        } else if (strncmp(url, "http://", 7) == 0) {
            cli_error("%s: %s '%s': plain http:// is never used (a token would travel in clear); "
                      "%s takes " URL_FORMS,
                      cmd, source, url, source);
        } else if (strncmp(url, "unix:", 5) == 0 || strncmp(url, "https://", 8) == 0) {
            /* The library knows what is wrong within the scheme; its message starts with the
             * url ("url 'URL': why"), which the CLI says itself. */
            n = snprintf(head, sizeof(head), "url '%s': ", url);
            if (n > 0 && (size_t)n < sizeof(head) && strncmp(why, head, (size_t)n) == 0)
                why += n;
            cli_error("%s: %s '%s': %s; %s takes " URL_FORMS, cmd, source, url,
                      why[0] != '\0' ? why : "not a daemon address", source);
        } else {
            cli_error("%s: %s '%s': not a daemon address; %s takes " URL_FORMS, cmd, source, url,
                      source);
        }
        return CLI_EXIT_USAGE;
    }
    /* The token file of --token-file reached the library as $RXJOB_TOKEN_FILE (cli_url). */
    if (c->token_file != NULL && strncmp(why, "RXJOB_TOKEN_FILE ", 17) == 0)
        cli_error("%s: --token-file %s", cmd, why + 17);
    else if (why[0] != '\0')
        cli_error("%s: %s", cmd, why);
    else
        cli_error("%s: %s", cmd, rx_strerror(err));
    return cli_exit_for_err(err);
}

int
cli_context(cli *c, const char *cmd, rx_context **out_ctx)
{
    char why[CLI_CAPTURE_MAX];
    const char *url;
    rx_err err;

    if (c->ctx == NULL) {
        url = cli_url(c);
        /* The library logs why it cannot open the url: said once, here, in the CLI's words. */
        cli_capture_begin(c, why);
        err = rx_server_context(url, &c->ctx);
        cli_capture_end(c);
        if (err != RX_OK)
            return cli_open_failed(c, cmd, err, why);
    }
    *out_ctx = c->ctx;
    return CLI_EXIT_OK;
}

int
cli_job_open(cli *c, const char *cmd, const char *id_arg, rx_job **out_job)
{
    rx_context *ctx = NULL;
    int64_t id = 0;
    rx_err err;
    int rc;

    if (cli_parse_i64(cmd, "job id", id_arg, 1, INT64_MAX, &id) != 0)
        return CLI_EXIT_USAGE;
    rc = cli_context(c, cmd, &ctx);
    if (rc != CLI_EXIT_OK)
        return rc;
    err = rx_job_open(ctx, id, out_job);
    if (err != RX_OK)
        return cli_fail(c, cmd, err);
    return CLI_EXIT_OK;
}

int
cli_exit_for_err(rx_err err)
{
    switch (err) {
    case RX_OK:
        return CLI_EXIT_OK;
    case RX_EJOBFAILED:
        return CLI_EXIT_FAILED;
    case RX_EINVAL:
    case RX_ECOUNT:
    case RX_ETOOBIG:
        return CLI_EXIT_USAGE;
    case RX_ECONTEXT:
        return CLI_EXIT_UNREACHABLE;
    case RX_ECANCELED:
        return CLI_EXIT_CANCELED;
    case RX_ENOENT:
    case RX_ENORESULTS:
        return CLI_EXIT_UNDETERMINED;
    case RX_ETIMEDOUT:
        return CLI_EXIT_TIMEOUT;
    case RX_ENOTFINISHED:
        return CLI_EXIT_NOTFINISHED;
    case RX_ELIMIT:
        return CLI_EXIT_LIMIT;
    default:
        return CLI_EXIT_ERROR;
    }
}

int
cli_exit_for_status(rx_job_status status)
{
    switch (status) {
    case RX_JOB_QUEUED:
    case RX_JOB_RUNNING:
    case RX_JOB_FINISHED:
        return CLI_EXIT_OK;
    case RX_JOB_FAILED:
        return CLI_EXIT_FAILED;
    case RX_JOB_CANCELED:
        return CLI_EXIT_CANCELED;
    default:
        return CLI_EXIT_UNDETERMINED;
    }
}

int
cli_fail(cli *c, const char *what, rx_err err)
{
    const char *detail = c->ctx != NULL ? rx_context_errmsg(c->ctx) : "";

    if (detail != NULL && detail[0] != '\0')
        cli_error("%s: %s: %s", what, rx_strerror(err), detail);
    else
        cli_error("%s: %s", what, rx_strerror(err));
    return cli_exit_for_err(err);
}

int
cli_no_such_job(const char *what)
{
    cli_error("%s: no such job: collected (with auto-cleanup), cleaned up, or never submitted "
              "(UNDETERMINED)",
              what);
    return CLI_EXIT_UNDETERMINED;
}

int
cli_stderr_is_tty(void)
{
    return isatty(STDERR_FILENO);
}

rx_err
cli_job_poll(rx_job *job, rx_job_status *out_status, rx_job_progress *out_progress)
{
    rx_job_progress progress;
    rx_job_status status = RX_JOB_UNDETERMINED;
    rx_err err;

    memset(&progress, 0, sizeof(progress));
    err = rx_job_get_progress(job, &status, &progress);
    if (err == RX_ENOENT) {
        status = RX_JOB_UNDETERMINED;
        memset(&progress, 0, sizeof(progress));
        err = RX_OK;
    }
    if (err != RX_OK)
        return err;
    *out_status = status;
    if (out_progress != NULL)
        *out_progress = progress;
    return RX_OK;
}

static double
now_s(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
draw_progress(rx_job *job, rx_job_status status, const rx_job_progress *pr)
{
    /* \r and "erase to end of line" redraw one line in place; only ever sent to a terminal. */
    (void)fprintf(stderr, "\r\033[Kjob %lld: %zu/%zu tasks done (%s)", (long long)rx_job_id(job),
                  pr->ok + pr->failed, pr->n_tasks, rx_job_status_name(status));
}

rx_err
cli_wait_job(rx_job *job, double timeout_s, rx_job_status *out_status,
             rx_job_progress *out_progress)
{
    rx_job_progress progress;
    rx_job_status status = RX_JOB_UNDETERMINED;
    double deadline = timeout_s >= 0 ? now_s() + timeout_s : 0;
    rx_err wait_err = RX_OK;
    rx_err err;

    memset(&progress, 0, sizeof(progress));
    if (!cli_stderr_is_tty()) {
        wait_err = rx_wait_for_job(job, timeout_s);
        if (wait_err != RX_OK && wait_err != RX_ETIMEDOUT)
            return wait_err;
        err = cli_job_poll(job, &status, &progress);
        if (err != RX_OK)
            return err;
    } else {
        for (;;) {
            double slice = PROGRESS_SLICE_S;

            err = cli_job_poll(job, &status, &progress);
            if (err != RX_OK)
                break;
            if (rx_job_status_is_terminal(status))
                break;
            draw_progress(job, status, &progress);
            if (timeout_s >= 0) {
                double left = deadline - now_s();

                if (left <= 0) {
                    wait_err = RX_ETIMEDOUT;
                    break;
                }
                if (left < slice)
                    slice = left;
            }
            err = rx_wait_for_job(job, slice);
            if (err != RX_OK && err != RX_ETIMEDOUT)
                break;
        }
        (void)fputs("\r\033[K", stderr);
        if (err != RX_OK && err != RX_ETIMEDOUT)
            return err;
    }
    *out_status = status;
    if (out_progress != NULL)
        *out_progress = progress;
    /* A job that ended at the very deadline is over, not timed out. */
    if (wait_err == RX_ETIMEDOUT && !rx_job_status_is_terminal(status))
        return RX_ETIMEDOUT;
    return RX_OK;
}

static json_t *
results_json(int64_t id, const rx_results *res)
{
    rx_job_progress progress;
    json_t *slots = json_array();
    json_t *obj = json_object();
    size_t n = rx_results_count(res);

    memset(&progress, 0, sizeof(progress));
    progress.n_tasks = n;
    progress.failed = rx_results_failed(res);
    progress.ok = n - progress.failed;
    if (slots == NULL || obj == NULL)
        goto fail;
    if (json_object_set_new(obj, "job", cli_json_job(id, rx_results_status(res), &progress)) != 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        rx_task_state state = rx_results_state(res, i);
        json_t *slot = json_object();
        int bad = slot == NULL;

        bad = bad || json_object_set_new(slot, "index", json_integer((json_int_t)i)) != 0;
        bad =
            bad || json_object_set_new(slot, "state", json_string(rx_task_state_name(state))) != 0;
        if (state == RX_TASK_OK) {
            size_t len = 0;
            const void *value = rx_results_value(res, i, &len);

            bad = bad || json_object_set_new(slot, "value_b64", cli_json_base64(value, len)) != 0;
        } else {
            const char *error = rx_results_error(res, i);

            bad = bad || json_object_set_new(slot, "error",
                                             cli_json_string(error != NULL ? error : "")) != 0;
            bad = bad || json_object_set_new(slot, "exit_status",
                                             json_integer(rx_results_exit_status(res, i))) != 0;
            bad = bad ||
                  json_object_set_new(slot, "signal", json_integer(rx_results_signal(res, i))) != 0;
        }
        bad = bad ||
              json_object_set_new(slot, "elapsed_s", json_real(rx_results_elapsed_s(res, i))) != 0;
        if (bad || json_array_append_new(slots, slot) != 0) {
            json_decref(slot);
            goto fail;
        }
    }
    if (json_object_set_new(obj, "slots", slots) != 0) {
        slots = NULL;
        goto fail;
    }
    return obj;

fail:
    json_decref(slots);
    json_decref(obj);
    return NULL;
}

static int
print_value(const void *value, size_t len)
{
    if (len > 0 && fwrite(value, 1, len, stdout) != len)
        return -1;
    if (len == 0 || ((const char *)value)[len - 1] != '\n')
        return fputc('\n', stdout) == EOF ? -1 : 0;
    return 0;
}

int
cli_print_results(cli *c, const char *what, rx_job *job, int keep)
{
    rx_results *res = NULL;
    rx_tristate console = c->json ? RX_FALSE : RX_INHERIT; /* output would break the JSON */
    rx_err err;
    int rc = CLI_EXIT_OK;

    err = rx_get_job_results(job, console, keep ? RX_FALSE : RX_INHERIT, &res);
    if (err == RX_ENORESULTS)
        return cli_no_such_job(what); /* the line output, status and wait say */
    if (err != RX_OK && err != RX_EJOBFAILED)
        return cli_fail(c, what, err);

    if (c->json) {
        rc = cli_json_print(results_json(rx_job_id(job), res));
    } else {
        for (size_t i = 0; i < rx_results_count(res); i++) {
            size_t len = 0;
            const void *value = rx_results_value(res, i, &len);

            if (rx_results_state(res, i) == RX_TASK_OK) {
                if (print_value(value != NULL ? value : "", value != NULL ? len : 0) != 0)
                    break; /* main reports the write error */
            } else {
                const char *error = rx_results_error(res, i);

                (void)fflush(stdout); /* keep stdout and stderr in task order on a terminal */
                (void)fprintf(stderr, "task %zu: ERROR: ", i);
                cli_fputs_display(
                    error != NULL ? error : rx_task_state_name(rx_results_state(res, i)), stderr);
                (void)fputc('\n', stderr);
            }
        }
    }
    if (rc == CLI_EXIT_OK && (err == RX_EJOBFAILED || rx_results_status(res) == RX_JOB_FAILED))
        rc = CLI_EXIT_FAILED;
    rx_results_free(res);
    return rc;
}

json_t *
cli_json_job(int64_t id, rx_job_status status, const rx_job_progress *pr)
{
    json_t *obj = json_object();
    json_t *tasks = json_object();
    int bad = obj == NULL || tasks == NULL;

    bad = bad || json_object_set_new(obj, "id", json_integer((json_int_t)id)) != 0;
    bad = bad || json_object_set_new(obj, "status", json_string(rx_job_status_name(status))) != 0;
    if (pr != NULL && !bad) {
        bad =
            bad || json_object_set_new(obj, "n_tasks", json_integer((json_int_t)pr->n_tasks)) != 0;
        bad = bad ||
              json_object_set_new(tasks, "pending", json_integer((json_int_t)pr->pending)) != 0;
        bad = bad ||
              json_object_set_new(tasks, "running", json_integer((json_int_t)pr->running)) != 0;
        bad = bad || json_object_set_new(tasks, "ok", json_integer((json_int_t)pr->ok)) != 0;
        bad =
            bad || json_object_set_new(tasks, "failed", json_integer((json_int_t)pr->failed)) != 0;
        bad = bad || json_object_set(obj, "tasks", tasks) != 0;
        if (pr->created_s > 0)
            bad = bad || json_object_set_new(obj, "created_s", json_real(pr->created_s)) != 0;
        if (pr->ended_s > 0)
            bad = bad || json_object_set_new(obj, "ended_s", json_real(pr->ended_s)) != 0;
    }
    json_decref(tasks);
    if (bad) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there are not one. */
static size_t
utf8_len(const unsigned char *s)
{
    size_t n;
    unsigned min;
    unsigned cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        n = 2, min = 0x80, cp = s[0] & 0x1Fu;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3, min = 0x800, cp = s[0] & 0x0Fu;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4, min = 0x10000, cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0u) != 0x80u) /* also stops at the NUL */
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

json_t *
cli_json_string(const char *s)
{
    static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
    const unsigned char *p = (const unsigned char *)s;
    json_t *str = json_string(s);
    char *copy;
    size_t len = 0;

    if (str != NULL)
        return str;
    /* Not UTF-8 (or out of memory): replace each bad byte, at most 3 bytes for 1. */
    copy = malloc(strlen(s) * 3 + 1);
    if (copy == NULL)
        return NULL;
    while (*p != '\0') {
        size_t n = utf8_len(p);

        if (n == 0) {
            memcpy(copy + len, replacement, 3);
            len += 3;
            p++;
        } else {
            memcpy(copy + len, p, n);
            len += n;
            p += n;
        }
    }
    copy[len] = '\0';
    str = json_string(copy);
    free(copy);
    return str;
}

json_t *
cli_json_base64(const void *data, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *in = data;
    size_t out_len = (len + 2) / 3 * 4;
    char *out = malloc(out_len + 1);
    size_t o = 0;
    json_t *str;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;

        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63u];
        out[o++] = alphabet[(v >> 12) & 63u];
        out[o++] = i + 1 < len ? alphabet[(v >> 6) & 63u] : '=';
        out[o++] = i + 2 < len ? alphabet[v & 63u] : '=';
    }
    out[o] = '\0';
    str = json_stringn(out, o);
    free(out);
    return str;
}

int
cli_json_print(json_t *value)
{
    int rc = CLI_EXIT_OK;

    if (value == NULL) {
        cli_error("JSON output: %s", rx_strerror(RX_ENOMEM));
        return CLI_EXIT_ERROR;
    }
    if (json_dumpf(value, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) != 0 ||
        fputc('\n', stdout) == EOF)
        rc = CLI_EXIT_ERROR; /* main reports the write error when it flushes */
    json_decref(value);
    return rc;
}

int
cli_parse_one_id(cli *c, cli_parser *p, int argc, char **argv, const char *usage,
                 const char **out_id_arg)
{
    const char *id_arg = NULL;
    const char *arg = NULL;

    *out_id_arg = NULL;
    cli_parser_init(p, argv[0], argc, argv, 0);
    for (;;) {
        int id = cli_next_opt(p, c, NULL, &arg);

        if (id == CLI_OPT_END)
            break;
        if (id == CLI_OPT_HELP) {
            (void)fputs(usage, stdout);
            return CLI_EXIT_OK;
        }
        if (id != CLI_OPT_OPERAND)
            return CLI_EXIT_USAGE;
        if (id_arg != NULL)
            return cli_usage_error(p->cmd, "one job id only ('%s' is extra)", arg);
        id_arg = arg;
    }
    if (id_arg == NULL)
        return cli_usage_error(p->cmd, "no job id given");
    *out_id_arg = id_arg;
    return CLI_EXIT_OK;
}
