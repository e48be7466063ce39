/*
 * cmd_exec.c - rxjob exec: submit a command as a job (rx_exec on the server context) and print
 * the new job's id alone on one line, as sbatch --parsable does; with --wait, wait for it and
 * print its results instead, exiting as the job ended.
 *
 * Task arguments come from --elem (one task each) and --elems-from (one task per line, without
 * its newline), in the order given; "{}" in COMMAND takes each task's argument, or it is
 * appended (rx_work.argv in rxjob.h). Lines are read as bytes: the library refuses an argument
 * with a NUL byte, since no command could receive it.
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static const char usage[] =
    "Usage: rxjob exec [OPTIONS] -- PROGRAM [ARG...]\n"
    "\n"
    "Submit PROGRAM as a job of one or more tasks and print the job's id.\n"
    "Each task runs PROGRAM with every \"{}\" in its arguments replaced by the task's\n"
    "argument (appended when there is no \"{}\"; without task arguments \"{}\" stays).\n"
    "No shell is involved: run a shell line as sh -c 'LINE'. A task's result is what it\n"
    "writes to the file named by $RXJOB_RESULT.\n"
    "\n"
    "Options:\n"
    "  --wait               wait for the job, print its results, exit as it ended\n"
    "  --times N            run N tasks (with task arguments: N must be their number)\n"
    "  --elem ARG           add a task with argument ARG (repeatable)\n"
    "  --elems-from FILE    add a task per line of FILE ('-': standard input)\n"
    "  --num-tasks N        run at most N tasks of this job at once\n"
    "  --chunk-size N       run N tasks in a row under one supervisor (1-10000; for\n"
    "                       many short tasks: fewer spawns and records per task)\n"
    "  --timeout SECONDS    time limit of each task (0: none)\n"
    "  --console-output     print the tasks' output when the results are collected\n"
    "  --no-auto-cleanup    keep the job after its results are collected\n"
    "  --stop-on-failure    stop the job at its first failed task\n"
    "  --url URL            the daemon to use (unix:/path or https://HOST:PORT)\n"
    "  --json               print the job as JSON (with --wait: the results)\n"
    "  -h, --help           this help\n";

enum {
    OPT_WAIT = 1,
    OPT_TIMES,
    OPT_ELEM,
    OPT_ELEMS_FROM,
    OPT_NUM_TASKS,
    OPT_TIMEOUT,
    OPT_CONSOLE_OUTPUT,
    OPT_NO_AUTO_CLEANUP,
    OPT_STOP_ON_FAILURE,
    OPT_CHUNK_SIZE
};

static const cli_opt exec_opts[] = {
    {"wait", 0, OPT_WAIT},
    {"times", 1, OPT_TIMES},
    {"elem", 1, OPT_ELEM},
    {"elems-from", 1, OPT_ELEMS_FROM},
    {"num-tasks", 1, OPT_NUM_TASKS},
    {"timeout", 1, OPT_TIMEOUT},
    {"console-output", 0, OPT_CONSOLE_OUTPUT},
    {"no-auto-cleanup", 0, OPT_NO_AUTO_CLEANUP},
    {"stop-on-failure", 0, OPT_STOP_ON_FAILURE},
    {"chunk-size", 1, OPT_CHUNK_SIZE},
    {NULL, 0, 0},
};

/* The most tasks of one job at once the CLI accepts (the daemon caps it by its slots anyway). */
#define NUM_TASKS_MAX  1000000
/* The most tasks in a row under one supervisor: the daemon's ENGINE_CHUNK_MAX. */
#define CHUNK_SIZE_MAX 10000

/* Task arguments: borrowed from argv (--elem) or owned (lines of --elems-from). */
typedef struct elems {
    rx_buf *bufs;
    char **owned; /* owned[i]: the storage of bufs[i], or NULL when borrowed */
    size_t n;
    size_t cap;
} elems;

static int
elems_add(elems *e, const void *data, size_t len, char *owned)
{
    if (e->n == e->cap) {
        size_t cap = e->cap == 0 ? 16 : e->cap * 2;
        rx_buf *bufs = realloc(e->bufs, cap * sizeof(*bufs));
        char **own;

        if (bufs == NULL)
            return -1;
        e->bufs = bufs;
        own = realloc(e->owned, cap * sizeof(*own));
        if (own == NULL)
            return -1;
        e->owned = own;
        e->cap = cap;
    }
    e->bufs[e->n].data = data;
    e->bufs[e->n].len = len;
    e->owned[e->n] = owned;
    e->n++;
    return 0;
}

static void
elems_free(elems *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->owned[i]);
    free(e->owned);
    free(e->bufs);
}

/* Add one task per line of path ("-": stdin). Returns 0 or an exit status after printing. */
static int
elems_read(elems *e, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    size_t line_no = 0;
    ssize_t len;
    int rc = CLI_EXIT_OK;

    if (f == NULL) {
        cli_error("exec: --elems-from '%s': %s", path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    errno = 0;
    for (;;) {
        len = getline(&line, &cap, f);
        if (len < 0)
            break;
        line_no++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        /* Said here, with the line, rather than by rx_exec as "elem_args[i]" of the whole list. */
        if (memchr(line, '\0', (size_t)len) != NULL) {
            cli_error("exec: --elems-from '%s': line %zu holds a NUL byte, which a command's "
                      "argument cannot hold",
                      path, line_no);
            rc = CLI_EXIT_USAGE;
            break;
        }
        if (elems_add(e, line, (size_t)len, line) != 0) {
            cli_error("exec: --elems-from '%s': %s", path, strerror(ENOMEM));
            rc = CLI_EXIT_ERROR;
            break;
        }
        line = NULL; /* owned by e now */
        cap = 0;
    }
    if (rc == CLI_EXIT_OK && ferror(f)) {
        cli_error("exec: --elems-from '%s': %s", path, strerror(errno != 0 ? errno : EIO));
        rc = CLI_EXIT_USAGE;
    }
    free(line);
    if (f != stdin)
        (void)fclose(f);
    return rc;
}

static int
print_job(cli *c, rx_job *job)
{
    rx_job_progress progress;
    rx_job_status status = RX_JOB_UNDETERMINED;
    rx_err err;

    if (!c->json) {
        (void)printf("%lld\n", (long long)rx_job_id(job));
        return CLI_EXIT_OK;
    }
    err = cli_job_poll(job, &status, &progress);
    if (err != RX_OK)
        return cli_fail(c, "exec", err);
    return cli_json_print(cli_json_job(rx_job_id(job), status, &progress));
}

/* Ctrl-C while --wait waits: the job goes on in the daemon (as after sbatch); say which job it
 * is, since its id was never printed, and how to stop it. Only async-signal-safe calls here. */
static char interrupted_msg[160];
static size_t interrupted_len;

static void
on_interrupt(int sig)
{
    (void)sig;
    if (write(STDERR_FILENO, interrupted_msg, interrupted_len) < 0) {
        /* nothing more can be done in a signal handler */
    }
    _exit(130);
}

static void
announce_on_interrupt(rx_job *job)
{
    struct sigaction sa;
    int n = snprintf(interrupted_msg, sizeof(interrupted_msg),
                     "\nrxjob: interrupted: job %lld goes on; stop it with: rxjob cancel %lld\n",
                     (long long)rx_job_id(job), (long long)rx_job_id(job));

    interrupted_len = n > 0 && (size_t)n < sizeof(interrupted_msg) ? (size_t)n : 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_interrupt;
    (void)sigaction(SIGINT, &sa, NULL);
    (void)sigaction(SIGTERM, &sa, NULL);
}

/*
 * The tasks run in the current directory: one that was removed is refused before anything is
 * submitted (rx_exec would refuse it too, but its advice, "give the work a cwd", is for C
 * callers). Returns 0 or the exit status after printing.
 */
static int
check_cwd(const char *cmd)
{
    char dir[4096];

    if (getcwd(dir, sizeof(dir)) != NULL)
        return CLI_EXIT_OK;
    if (errno == ENOENT)
        cli_error("%s: the current directory was removed, and the tasks would run in it: change "
                  "to an existing directory",
                  cmd);
    else
        cli_error("%s: the current directory cannot be the tasks' working directory (%s): change "
                  "to another directory",
                  cmd, strerror(errno));
    return CLI_EXIT_USAGE;
}

/* The message of a refused rx_exec: the context's detail, without the "rx_exec: " it starts
 * with (the command is named already). */
static int
exec_failed(cli *c, const char *cmd, rx_err err)
{
    const char *detail = c->ctx != NULL ? rx_context_errmsg(c->ctx) : "";

    if (detail == NULL || detail[0] == '\0')
        return cli_fail(c, cmd, err);
    if (strncmp(detail, "rx_exec: ", 9) == 0)
        detail += 9;
    cli_error("%s: %s: %s", cmd, rx_strerror(err), detail);
    return cli_exit_for_err(err);
}

/* --wait: wait for the end, then collect and print the results as rxjob results does. */
static int
wait_and_collect(cli *c, rx_job *job)
{
    rx_job_status status = RX_JOB_UNDETERMINED;
    char what[64];
    rx_err err;

    announce_on_interrupt(job);
    (void)snprintf(what, sizeof(what), "exec: job %lld", (long long)rx_job_id(job));
    err = cli_wait_job(job, -1, &status, NULL);
    if (err != RX_OK)
        return cli_fail(c, what, err);
    if (status == RX_JOB_CANCELED || status == RX_JOB_UNDETERMINED) {
        cli_error("%s: %s", what, rx_job_status_name(status));
        return cli_exit_for_status(status);
    }
    return cli_print_results(c, what, job, 0);
}

int
cmd_exec(cli *c, int argc, char **argv)
{
    rx_exec_opts opts = RX_EXEC_OPTS_INIT;
    cli_parser p;
    elems e;
    rx_context *ctx = NULL;
    rx_job *job = NULL;
    rx_work work;
    const char *arg = NULL;
    int wait = 0;
    int no_auto_cleanup = 0;
    int have_elems = 0;
    int rc = CLI_EXIT_OK;
    rx_err err;

    memset(&e, 0, sizeof(e));
    cli_parser_init(&p, argv[0], argc, argv, 1);
    for (;;) {
        int id = cli_next_opt(&p, c, exec_opts, &arg);
        int64_t n = 0;
        double s = 0;

        if (id == CLI_OPT_END)
            break;
        switch (id) {
        case CLI_OPT_HELP:
            (void)fputs(usage, stdout);
            goto done;
        case OPT_WAIT:
            wait = 1;
            break;
        case OPT_TIMES:
            if (cli_parse_i64(p.cmd, "--times", arg, 1, RX_MAX_TASKS, &n) != 0)
                goto usage;
            opts.times_to_run = n;
            break;
        case OPT_ELEM:
            have_elems = 1;
            if (elems_add(&e, arg, strlen(arg), NULL) != 0) {
                cli_error("exec: %s", rx_strerror(RX_ENOMEM));
                rc = CLI_EXIT_ERROR;
                goto done;
            }
            break;
        case OPT_ELEMS_FROM:
            have_elems = 1;
            rc = elems_read(&e, arg);
            if (rc != CLI_EXIT_OK)
                goto done;
            break;
        case OPT_NUM_TASKS:
            if (cli_parse_i64(p.cmd, "--num-tasks", arg, 1, NUM_TASKS_MAX, &n) != 0)
                goto usage;
            opts.num_tasks = (unsigned)n;
            break;
        case OPT_CHUNK_SIZE:
            if (cli_parse_i64(p.cmd, "--chunk-size", arg, 1, CHUNK_SIZE_MAX, &n) != 0)
                goto usage;
            opts.task_chunk_size = (unsigned)n;
            break;
        case OPT_TIMEOUT:
            if (cli_parse_seconds(p.cmd, "--timeout", arg, 0, RX_MAX_TIMEOUT_S, &s) != 0)
                goto usage;
            opts.execution_timeout_s = s;
            break;
        case OPT_CONSOLE_OUTPUT:
            opts.console_output = RX_TRUE;
            break;
        case OPT_NO_AUTO_CLEANUP:
            no_auto_cleanup = 1;
            break;
        case OPT_STOP_ON_FAILURE:
            opts.continue_on_failure = RX_FALSE;
            break;
        default: /* CLI_OPT_BAD: already said */
            goto usage;
        }
    }
    if (p.next >= argc) {
        rc = cli_usage_error(p.cmd, "no PROGRAM given (rxjob exec [OPTIONS] -- PROGRAM [ARG...])");
        goto done;
    }
    if (argv[p.next][0] == '\0') {
        rc = cli_usage_error(p.cmd, "PROGRAM is empty");
        goto done;
    }
    if (have_elems && e.n == 0) {
        rc = cli_usage_error(p.cmd, "--elems-from: no lines, so no tasks to run");
        goto done;
    }
    /* What rx_exec would refuse naming its fields (times_to_run, elem_args), said in the
     * options' names. */
    if (have_elems && e.n > (size_t)RX_MAX_TASKS) {
        rc = cli_usage_error(
            p.cmd, "%zu task arguments (--elem, --elems-from): more than the limit of %lld tasks",
            e.n, (long long)RX_MAX_TASKS);
        goto done;
    }
    if (have_elems && opts.times_to_run > 0 && (size_t)opts.times_to_run != e.n) {
        rc = cli_usage_error(p.cmd,
                             "--times %lld but %zu task arguments (--elem, --elems-from): with "
                             "task arguments, --times must be their number, or be left out",
                             (long long)opts.times_to_run, e.n);
        goto done;
    }
    rc = check_cwd(p.cmd);
    if (rc != CLI_EXIT_OK)
        goto done;
    if (have_elems) {
        opts.elem_args = e.bufs;
        opts.n_elem_args = e.n;
    }

    rc = cli_context(c, p.cmd, &ctx);
    if (rc != CLI_EXIT_OK)
        goto done;
    if (no_auto_cleanup)
        (void)rx_context_set_auto_cleanup(ctx, 0);
    work = rx_work_command((const char *const *)(argv + p.next));
    err = rx_exec(ctx, &work, &opts, NULL, &job);
    if (err != RX_OK) {
        rc = exec_failed(c, p.cmd, err);
        goto done;
    }
    if (wait)
        rc = wait_and_collect(c, job);
    else
        rc = print_job(c, job);
    goto done;

usage:
    rc = CLI_EXIT_USAGE;
done:
    rx_job_free(job);
    elems_free(&e);
    return rc;
}
