/*
 * cmd_output.c - rxjob output ID [--follow]: the console output (stdout and stderr) of every
 * task, in task order, each after a line "==> task N <==" (rx_get_job_output). Partial while the
 * job runs; reading it never consumes it. rx_get_job_output gives an unknown or gone job's output
 * as empty, not as an error (revoscalepy's rule); so when the output is empty, and only then,
 * the CLI asks for the job's status, and an UNDETERMINED job is said on stderr and exits 5, as
 * status, results and cancel do.
 *
 * --follow goes on until the job is over, as tail -f does. The public API has no streaming
 * variant, so the CLI asks for the whole output about once a second and prints what is new. The
 * output is cut into its tasks' sections at the header lines (only "==> task N <==" with N the
 * next index counts, so a task that prints such a line of its own is not taken for a header).
 * A task's header is printed with its first bytes (a task that prints nothing gets none); when
 * tasks run side by side and an earlier one grows after a later one has printed, its header is
 * printed again before its new bytes, as tail -f does when it switches files. (A streaming
rx_get_job_output, over the protocol's follow=1, would spare the polling.)
 */
#define _GNU_SOURCE /* fopencookie: count the bytes rx_get_job_output streams to stdout */

#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static const char usage[] =
    "Usage: rxjob output [--follow] [--json] ID\n"
    "\n"
    "Print the console output (stdout and stderr) of every task of job ID, in task\n"
    "order, each after a line \"==> task N <==\". Partial while the job runs. A job that\n"
    "is unknown or gone (collected, cleaned up) exits 5 with a message. Does not consume\n"
    "the output.\n"
    "\n"
    "Options:\n"
    "  --follow           print new output as it comes, until the job is over\n"
    "  --url URL          the daemon to ask (unix:/path or https://HOST:PORT)\n"
    "  --json             print {\"id\": ID, \"output_b64\": \"...\"}\n"
    "  -h, --help         this help\n";

enum { OPT_FOLLOW = 1 };

static const cli_opt output_opts[] = {
    {"follow", 0, OPT_FOLLOW},
    {NULL, 0, 0},
};

/* Seconds between two looks at the output with --follow. */
#define FOLLOW_INTERVAL_S 1.0

/* The job's whole output in memory (only --json and --follow need that). */
static rx_err
fetch_output(rx_job *job, char **out_buf, size_t *out_len)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    rx_err err;

    if (f == NULL)
        return RX_ENOMEM;
    err = rx_get_job_output(job, f);
    if (fclose(f) != 0 && err == RX_OK)
        err = RX_ENOMEM;
    if (err != RX_OK) {
        free(buf);
        return err;
    }
    *out_buf = buf;
    *out_len = len;
    return RX_OK;
}

/* rx_get_job_output streams to stdout through this writer, which counts the bytes: an empty
 * output is the one case where the job's status must be asked (empty is also what an unknown
 * job gives, rxjob.h), and the output itself need never be held whole in memory. */
static ssize_t
count_write(void *cookie, const char *data, size_t len)
{
    size_t *total = cookie;

    if (len > 0 && fwrite(data, 1, len, stdout) != len)
        return -1;
    *total += len;
    return (ssize_t)len;
}

/* Write the job's output to stdout as it comes; *out_len: how many bytes were written. */
static rx_err
stream_output(rx_job *job, size_t *out_len)
{
    cookie_io_functions_t io = {.write = count_write};
    size_t total = 0;
    FILE *f = fopencookie(&total, "w", io);
    rx_err err;

    if (f == NULL)
        return RX_ENOMEM;
    err = rx_get_job_output(job, f);
    if (fclose(f) != 0 && err == RX_OK)
        err = RX_EIO;
    *out_len = total;
    return err;
}

/* The output was empty: is that because the job is unknown or gone (exit 5, with a message)?
 * One status query, only in that case. Returns the exit status. */
static int
empty_output(cli *c, const char *what, rx_job *job)
{
    rx_job_status status = RX_JOB_UNDETERMINED;
    rx_err err = cli_job_poll(job, &status, NULL);

    if (err != RX_OK)
        return cli_fail(c, what, err);
    if (status == RX_JOB_UNDETERMINED)
        return cli_no_such_job(what);
    return CLI_EXIT_OK;
}

/* What --follow has printed of each task's section. */
typedef struct follow_state {
    size_t *printed; /* bytes of section i printed so far */
    size_t n;        /* sections seen */
    size_t last;     /* the section printed last; SIZE_MAX = none */
    int at_bol;      /* the last byte printed was a newline (or nothing was printed) */
} follow_state;

/* If buf[at..len) starts with the header of section index, its length; else 0. */
static size_t
header_at(const char *buf, size_t len, size_t at, size_t index)
{
    char header[64];
    int n = snprintf(header, sizeof(header), "==> task %zu <==\n", index);

    if (n <= 0 || (size_t)n > len - at || memcmp(buf + at, header, (size_t)n) != 0)
        return 0;
    return (size_t)n;
}

static void
write_bytes(follow_state *st, const char *data, size_t len)
{
    if (len == 0)
        return;
    (void)fwrite(data, 1, len, stdout);
    st->at_bol = data[len - 1] == '\n';
}

/* Print what is new in buf, section by section. Returns 0, or -1 when out of memory. */
static int
follow_print(follow_state *st, const char *buf, size_t len)
{
    size_t at = 0;
    size_t index = 0;
    size_t hlen = header_at(buf, len, 0, 0);

    if (hlen == 0) { /* no sections at all (no task has started, or the job is gone) */
        if (st->n == 0 && len > 0) {
            /* Not the expected shape: print it once as it is. */
            write_bytes(st, buf, len);
            st->last = 0;
            st->n = 1;
            st->printed = calloc(1, sizeof(size_t));
            if (st->printed == NULL)
                return -1;
            st->printed[0] = len;
        }
        return 0;
    }
    while (hlen > 0) {
        size_t start = at + hlen;
        size_t end = start;
        size_t next_hlen = 0;

        /* The section runs to the next task's header, or to the end. */
        for (; end < len; end++) {
            if (buf[end] != '=')
                continue;
            next_hlen = header_at(buf, len, end, index + 1);
            if (next_hlen > 0)
                break;
        }
        if (index >= st->n) {
            size_t *printed = realloc(st->printed, (index + 1) * sizeof(*printed));

            if (printed == NULL)
                return -1;
            st->printed = printed;
            for (size_t i = st->n; i <= index; i++)
                st->printed[i] = 0;
            st->n = index + 1;
        }
        /* A header goes out with its task's first bytes, and again when the output switches
         * back to that task; a task that has printed nothing yet gets none. */
        if (end - start > st->printed[index]) {
            if (st->last != index) {
                if (!st->at_bol)
                    write_bytes(st, "\n", 1);
                write_bytes(st, buf + at, hlen);
                st->last = index;
            }
            write_bytes(st, buf + start + st->printed[index], end - start - st->printed[index]);
            st->printed[index] = end - start;
        }
        at = end;
        hlen = next_hlen;
        index++;
    }
    (void)fflush(stdout);
    return 0;
}

static int
follow_output(cli *c, const char *what, rx_job *job)
{
    follow_state st;
    int rc = CLI_EXIT_OK;

    memset(&st, 0, sizeof(st));
    st.last = SIZE_MAX;
    st.at_bol = 1;
    for (;;) {
        rx_job_status status = RX_JOB_UNDETERMINED;
        char *buf = NULL;
        size_t len = 0;
        rx_err err = cli_job_poll(job, &status, NULL);

        /* The status first: output fetched after the job was seen over is complete. */
        if (err == RX_OK)
            err = fetch_output(job, &buf, &len);
        if (err != RX_OK) {
            rc = cli_fail(c, what, err);
            break;
        }
        if (follow_print(&st, buf, len) != 0) {
            free(buf);
            rc = cli_fail(c, what, RX_ENOMEM);
            break;
        }
        free(buf);
        /* Nothing printed, and the job reads UNDETERMINED: there is no such job (a job that
         * is collected while followed has had its output printed). */
        if (status == RX_JOB_UNDETERMINED && len == 0 && st.last == SIZE_MAX) {
            rc = cli_no_such_job(what);
            break;
        }
        if (ferror(stdout) || rx_job_status_is_terminal(status))
            break;
        err = rx_wait_for_job(job, FOLLOW_INTERVAL_S);
        if (err != RX_OK && err != RX_ETIMEDOUT) {
            rc = cli_fail(c, what, err);
            break;
        }
    }
    free(st.printed);
    return rc;
}

int
cmd_output(cli *c, int argc, char **argv)
{
    cli_parser p;
    rx_job *job = NULL;
    const char *id_arg = NULL;
    const char *arg = NULL;
    int follow = 0;
    char what[64];
    rx_err err;
    int rc;

    cli_parser_init(&p, argv[0], argc, argv, 0);
    for (;;) {
        int id = cli_next_opt(&p, c, output_opts, &arg);

        if (id == CLI_OPT_END)
            break;
        if (id == CLI_OPT_HELP) {
            (void)fputs(usage, stdout);
            return CLI_EXIT_OK;
        }
        if (id == OPT_FOLLOW) {
            follow = 1;
            continue;
        }
        if (id != CLI_OPT_OPERAND)
            return CLI_EXIT_USAGE;
        if (id_arg != NULL)
            return cli_usage_error(p.cmd, "one job id only ('%s' is extra)", arg);
        id_arg = arg;
    }
    if (id_arg == NULL)
        return cli_usage_error(p.cmd, "no job id given");
    if (follow && c->json)
        return cli_usage_error(p.cmd, "--follow and --json do not go together");

    rc = cli_job_open(c, p.cmd, id_arg, &job);
    if (rc != CLI_EXIT_OK)
        return rc;
    (void)snprintf(what, sizeof(what), "output %lld", (long long)rx_job_id(job));
    if (follow) {
        rc = follow_output(c, what, job);
    } else if (c->json) {
        char *buf = NULL;
        size_t len = 0;

        err = fetch_output(job, &buf, &len);
        if (err != RX_OK)
            rc = cli_fail(c, what, err);
        else if (len == 0)
            rc = empty_output(c, what, job); /* no such job: no JSON, as with results */
        if (err == RX_OK && rc == CLI_EXIT_OK) {
            json_t *obj = json_object();

            if (obj != NULL &&
                (json_object_set_new(obj, "id", json_integer((json_int_t)rx_job_id(job))) != 0 ||
                 json_object_set_new(obj, "output_b64", cli_json_base64(buf, len)) != 0)) {
                json_decref(obj);
                obj = NULL;
            }
            rc = cli_json_print(obj);
        }
        free(buf);
    } else {
        size_t len = 0;

        err = stream_output(job, &len);
        if (err != RX_OK)
            rc = cli_fail(c, what, err);
        else if (len == 0)
            rc = empty_output(c, what, job);
    }
    rx_job_free(job);
    return rc;
}
