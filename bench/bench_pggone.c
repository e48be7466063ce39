/*
 * bench_pggone - bench/compare's W5: how long a cancel takes until the canceled task's process
 * group is gone.
 *
 *     bench_pggone PIDFILE -- CANCEL-COMMAND [ARG...]
 *
 * PIDFILE holds the pid of a running task process (the task wrote its own $$ there). Its process
 * group is read from /proc/PID/stat; then the clock starts, CANCEL-COMMAND is started
 * (posix_spawnp, not waited for), and /proc is scanned every millisecond until no process of
 * that group remains (zombies count as gone: PID 1 here may never reap them). Prints
 * "pgid=G gone_ms=X cmd_ms=Y": from the start of the cancel command to the group's end, and to
 * the command's own exit. Exit status 0; 1 if the group is still there after 120 s, the pid is
 * not running, or the command failed to start or exited non-zero; 2 on a usage error.
 */
#define _GNU_SOURCE

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define GONE_TIMEOUT_MS 120000 /* the longest wait for the group to end */
#define POLL_NS         1000000L

static double
now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* State and process group of pid from /proc/PID/stat. Returns 0, or -1 if it is gone. */
static int
proc_stat(long pid, char *out_state, long *out_pgrp)
{
    char path[64], buf[512];
    FILE *f;
    char *paren;
    size_t len;

    (void)snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    f = fopen(path, "re");
    if (f == NULL)
        return -1;
    len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = '\0';
    paren = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
    if (paren == NULL || sscanf(paren + 1, " %c %*d %ld", out_state, out_pgrp) != 2)
        return -1;
    return 0;
}

/* 1 if some live (not zombie) process is in group pgid, else 0. */
static int
group_alive(long pgid)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int alive = 0;

    if (d == NULL)
        return 1; /* cannot tell: keep looking */
    while (!alive && (e = readdir(d)) != NULL) {
        char state;
        long pgrp;

        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        if (proc_stat(strtol(e->d_name, NULL, 10), &state, &pgrp) == 0 && pgrp == pgid &&
            state != 'Z' && state != 'X')
            alive = 1;
    }
    closedir(d);
    return alive;
}

int
main(int argc, char **argv)
{
    struct timespec tick = {0, POLL_NS};
    FILE *f;
    long pid = 0, pgid = 0;
    char state;
    pid_t cmd;
    int wstatus = 0, rc;
    double t0, gone_ms = -1, cmd_ms = -1;

    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: bench_pggone PIDFILE -- CANCEL-COMMAND [ARG...]\n");
        return 2;
    }
    f = fopen(argv[1], "re");
    if (f == NULL || fscanf(f, "%ld", &pid) != 1 || pid <= 0) {
        fprintf(stderr, "bench_pggone: no pid in '%s'\n", argv[1]);
        if (f != NULL)
            fclose(f);
        return 1;
    }
    fclose(f);
    if (proc_stat(pid, &state, &pgid) != 0 || state == 'Z' || pgid <= 1) {
        fprintf(stderr, "bench_pggone: process %ld is not running\n", pid);
        return 1;
    }
    t0 = now_ms();
    rc = posix_spawnp(&cmd, argv[3], NULL, NULL, argv + 3, environ);
    if (rc != 0) {
        fprintf(stderr, "bench_pggone: cannot start '%s': %s\n", argv[3], strerror(rc));
        return 1;
    }
    for (;;) {
        pid_t got = waitpid(cmd, &wstatus, WNOHANG);

        if (got == cmd && cmd_ms < 0)
            cmd_ms = now_ms() - t0;
        if (gone_ms < 0 && !group_alive(pgid))
            gone_ms = now_ms() - t0;
        if (gone_ms >= 0 && cmd_ms >= 0)
            break;
        if (now_ms() - t0 > GONE_TIMEOUT_MS) {
            fprintf(stderr, "bench_pggone: after %d ms: group %ld %s, '%s' %s\n", GONE_TIMEOUT_MS,
                    pgid, gone_ms < 0 ? "still runs" : "is gone", argv[3],
                    cmd_ms < 0 ? "still runs" : "exited");
            if (cmd_ms < 0) {
                (void)kill(cmd, SIGKILL);
                (void)waitpid(cmd, &wstatus, 0);
            }
            return 1;
        }
        (void)nanosleep(&tick, NULL);
    }
    printf("pgid=%ld gone_ms=%.2f cmd_ms=%.2f\n", pgid, gone_ms, cmd_ms);
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
        fprintf(stderr, "bench_pggone: '%s' ended with status 0x%x\n", argv[3], (unsigned)wstatus);
        return 1;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
