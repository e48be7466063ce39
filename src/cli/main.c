/*
 * main.c - rxjob, the command line of rxjob: submit commands as jobs to rxjobd and follow them,
 * as Slurm's sbatch/squeue/scancel or task-spooler's tsp do.
 *
 * main parses the global options (--url, --system, --token-file, --json, --help, --version),
 * installs the log sink that prints the library's warnings, and hands the rest of the command
 * line to the subcommand's cmd_<verb> function (one per file). Every subcommand talks to the daemon
 * through the public API only; its exit status is one of cli_exit (cli.h), documented in
 * docs/rxjob.1.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct subcommand {
    const char *name;
    int (*run)(cli *c, int argc, char **argv);
    const char *summary;
} subcommand;

static const subcommand subcommands[] = {
    {"exec", cmd_exec, "submit a command as a job; print its id"},
    {"status", cmd_status, "print a job's status"},
    {"wait", cmd_wait, "wait until a job is over; print its status"},
    {"results", cmd_results, "print a job's results (and clean it up)"},
    {"output", cmd_output, "print a job's console output"},
    {"cancel", cmd_cancel, "cancel a job"},
    {"cleanup", cmd_cleanup, "remove jobs and their artifacts"},
    {"jobs", cmd_jobs, "list jobs"},
    {"daemon", cmd_daemon, "start, stop or query the per-user daemon"},
};

#define N_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

enum { OPT_VERSION = 1 };

static const cli_opt main_opts[] = {
    {"version", 0, OPT_VERSION},
    {NULL, 0, 0},
};

static void
print_usage(void)
{
    (void)printf("Usage: rxjob [--url URL | --system] [--token-file FILE] [--json] COMMAND "
                 "[OPTIONS] [ARGS]\n"
                 "       rxjob exec [OPTIONS] -- PROGRAM [ARG...]\n"
                 "\n"
                 "Run commands as jobs on rxjobd, the per-user job daemon (started on first use),\n"
                 "and follow them by id.\n"
                 "\n"
                 "Commands:\n");
    for (size_t i = 0; i < N_SUBCOMMANDS; i++)
        (void)printf("  %-9s %s\n", subcommands[i].name, subcommands[i].summary);
    (void)printf("\n"
                 "Global options (also accepted after COMMAND):\n"
                 "  --url unix:/path  the daemon at this socket (default: $RXJOB_URL, else the\n"
                 "                    per-user daemon, $RXJOB_SOCKET, else\n"
                 "                    $XDG_RUNTIME_DIR/rxjob/rxjobd.sock, else\n"
                 "                    /tmp/rxjob-$UID/rxjobd.sock)\n"
                 "  --url https://HOST:PORT  a daemon serving TCP (rxjobd --listen): TLS, the\n"
                 "                    CA in $RXJOB_CA_FILE (else the system's), a token\n"
                 "  --token-file FILE the token for https (mode 0600; else $RXJOB_TOKEN or\n"
                 "                    $RXJOB_TOKEN_FILE)\n"
                 "  --system          the system-wide daemon: --url unix:/run/rxjob/rxjobd.sock\n"
                 "  --json            machine-readable output\n"
                 "  -h, --help        this help; 'rxjob COMMAND --help' for a command's\n"
                 "  --version         print the version\n"
                 "\n"
                 "Exit status: 0 ok; 1 job FAILED; 2 usage error or bad input; 3 daemon\n"
                 "unreachable; 4 job CANCELED; 5 job UNDETERMINED (unknown, results gone);\n"
                 "6 wait timed out; 7 job not finished; 8 other error; 9 a per-user limit\n"
                 "of the daemon was reached (try later). See rxjob(1).\n"
                 "\n"
                 "Example:\n"
                 "  id=$(rxjob exec -- sleep 10); rxjob status $id; rxjob wait $id\n");
}

/* The library's errors and warnings (rx_cleanup_jobs keeping a job, collecting a failed job's
 * results) are part of the answer; its info and debug messages only with $RXJOB_DEBUG. */
static void
log_sink(rx_log_level level, const char *msg, void *user)
{
    cli *c = user;
    static const char *const names[] = {"error", "warning", "info", "debug"};
    const char *debug = getenv("RXJOB_DEBUG");

    if (level == RX_LOG_WARN) {
        c->warned = 1;
        if (c->on_warning != NULL && c->on_warning(c, msg))
            return;
    }
    if (level == RX_LOG_ERROR && c->captured != NULL) {
        if (c->captured[0] == '\0')
            (void)snprintf(c->captured, c->captured_len, "%s", msg);
        return;
    }
    if (level > RX_LOG_WARN && (debug == NULL || debug[0] == '\0'))
        return;
    (void)fflush(stdout);
    (void)fprintf(stderr, "rxjob: %s: %s\n",
                  (unsigned)level < sizeof(names) / sizeof(names[0]) ? names[level] : "log", msg);
}

static const subcommand *
find_subcommand(const char *name)
{
    for (size_t i = 0; i < N_SUBCOMMANDS; i++) {
        if (strcmp(subcommands[i].name, name) == 0)
            return &subcommands[i];
    }
    return NULL;
}

/* "rxjob help [COMMAND]" is "rxjob [COMMAND] --help". */
static int
run_help(cli *c, int argc, char **argv)
{
    const subcommand *sub;
    char help[] = "--help";
    char *sub_argv[3];

    if (argc < 2) {
        print_usage();
        return CLI_EXIT_OK;
    }
    sub = find_subcommand(argv[1]);
    if (sub == NULL)
        return cli_usage_error(NULL, "help: unknown command '%s'", argv[1]);
    sub_argv[0] = argv[1];
    sub_argv[1] = help;
    sub_argv[2] = NULL;
    return sub->run(c, 2, sub_argv);
}

int
main(int argc, char **argv)
{
    cli c;
    cli_parser p;
    const subcommand *sub;
    const char *arg = NULL;
    int rc;

    /* stderr is unbuffered: a message escaped piece by piece (cli_fputs_display) would reach
     * it in many writes, interleaved with other processes' output. One write per line. */
    (void)setvbuf(stderr, NULL, _IOLBF, 0);
    memset(&c, 0, sizeof(c));
    cli_parser_init(&p, NULL, argc, argv, 1);
    for (;;) {
        int id = cli_next_opt(&p, &c, main_opts, &arg);

        if (id == CLI_OPT_END)
            break;
        if (id == CLI_OPT_BAD)
            return CLI_EXIT_USAGE;
        if (id == CLI_OPT_HELP) {
            print_usage();
            return CLI_EXIT_OK;
        }
        if (id == OPT_VERSION) {
            (void)printf("rxjob %s\n", rx_version());
            return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_ERROR;
        }
    }
    if (p.next >= argc)
        return cli_usage_error(NULL, "no command given");

    rx_set_log(log_sink, &c);
    if (strcmp(argv[p.next], "help") == 0) {
        rc = run_help(&c, argc - p.next, argv + p.next);
    } else {
        sub = find_subcommand(argv[p.next]);
        if (sub == NULL)
            return cli_usage_error(NULL, "unknown command '%s'", argv[p.next]);
        rc = sub->run(&c, argc - p.next, argv + p.next);
    }
    rx_context_free(c.ctx);
    rx_set_log(NULL, NULL);

    /* Output that could not be written (a full disk, a closed pipe) is an error, said once. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        int saved = errno;

        cli_error("write error on standard output: %s", saved != 0 ? strerror(saved) : "I/O error");
        if (rc == CLI_EXIT_OK)
            rc = CLI_EXIT_ERROR;
    }
    return rc;
}
