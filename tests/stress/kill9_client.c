/*
 * kill9_client.c - one submitting client of tests/stress/kill9.sh, using only the public API
 * (rxjob.h): submit N jobs to the daemon at URL as fast as it takes them, and record each
 * acknowledged one (rx_exec returned a job id) as a line "ID MARK K SLEEP" in OUT, flushed at
 * once, so the script knows exactly what the daemon acknowledged before it was killed.
 *
 * Job i of client C has the marker "cC-i" and runs
 *     sh -c 'echo $$ >> "$1/$2"; sleep "$3"; : > "$1/$2.end"; exit "$4"' kill9 DIR MARK SLEEP K
 * appending one line per run to DIR/MARK (a job run twice, or created twice, shows two) and
 * creating DIR/MARK.end as it ends (a task with MARK but no MARK.end was running). Every
 * 25th job sleeps 0.1 to 0.9 s and exits with K = 1 + (i % 100) (so some tasks are running when
 * the daemon is killed, and their exit status after adoption can be checked); the others sleep
 * 0 and exit 0.
 *
 * The client stops at its first refused or failed submission (the daemon was killed; with a
 * "unix:" URL the library never starts one of its own) and says how many it got through.
 *
 * Usage: kill9_client URL CLIENT N DIR OUT
 */
#include "rxjob.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main(int argc, char **argv)
{
    rx_context *ctx = NULL;
    FILE *out;
    long client, n;
    long i;
    rx_err err = RX_OK;

    if (argc != 6) {
        (void)fprintf(stderr, "usage: kill9_client URL CLIENT N DIR OUT\n");
        return 2;
    }
    client = strtol(argv[2], NULL, 10);
    n = strtol(argv[3], NULL, 10);
    out = fopen(argv[5], "w");
    if (out == NULL) {
        perror(argv[5]);
        return 2;
    }
    if (rx_server_context(argv[1], &ctx) != RX_OK) {
        (void)fprintf(stderr, "kill9_client: bad url '%s'\n", argv[1]);
        return 2;
    }
    for (i = 0; i < n; i++) {
        char mark[64], sleep_s[16], code[16];
        const char *const cmd[] = {
            "sh",    "-c",    "echo $$ >> \"$1/$2\"; sleep \"$3\"; : > \"$1/$2.end\"; exit \"$4\"",
            "kill9", argv[4], mark,
            sleep_s, code,    NULL};
        rx_work work;
        rx_job *job = NULL;
        int k = 0;

        (void)snprintf(mark, sizeof(mark), "c%ld-%ld", client, i);
        if (i % 25 == 0) {
            k = 1 + (int)(i % 100);
            (void)snprintf(sleep_s, sizeof(sleep_s), "0.%ld", 1 + (i / 25 + client) % 9);
        } else {
            (void)snprintf(sleep_s, sizeof(sleep_s), "0");
        }
        (void)snprintf(code, sizeof(code), "%d", k);
        work = rx_work_command(cmd);
        err = rx_exec(ctx, &work, NULL, NULL, &job);
        if (err != RX_OK)
            break;
        (void)fprintf(out, "%lld %s %d %s\n", (long long)rx_job_id(job), mark, k, sleep_s);
        (void)fflush(out);
        rx_job_free(job);
    }
    if (err != RX_OK)
        (void)fprintf(stderr, "kill9_client %ld: stopped after %ld jobs: %s: %s\n", client, i,
                      rx_errname(err), rx_context_errmsg(ctx));
    rx_context_free(ctx);
    return fclose(out) == 0 ? 0 : 1;
}
