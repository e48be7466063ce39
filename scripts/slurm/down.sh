#!/bin/sh
# down.sh - end the one-node Slurm cluster that scripts/slurm/up.sh started: slurmd, slurmctld
# and munged, each by the pid in its pid file in the cluster directory, and nothing else. Jobs
# still on the node are canceled first so that no job process is left behind.
#
# Environment: RXJOB_SLURM_DIR (default /tmp/rxjob-slurm), as for up.sh.
# RXJOB_SLURM_KEEP=1 keeps the directory (logs, state); by default only state and spool go.
set -u

dir=${RXJOB_SLURM_DIR:-/tmp/rxjob-slurm}
PATH=$PATH:/usr/sbin:/sbin

say() { echo "slurm/down.sh: $*" >&2; }

# pid_of PIDFILE COMM: the pid in the file if that process runs and is COMM, else nothing.
pid_of() {
    [ -s "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    case $pid in '' | *[!0-9]*) return 1 ;; esac
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [ "$comm" = "$2" ] || return 1
    echo "$pid"
}

# stop PIDFILE COMM: SIGTERM, up to 10 s, then SIGKILL.
stop() {
    pid=$(pid_of "$1" "$2") || {
        rm -f "$1"
        return 0
    }
    kill "$pid" 2>/dev/null
    i=0
    while kill -0 "$pid" 2>/dev/null && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then
            say "$2 (pid $pid) did not stop on SIGTERM: SIGKILL"
            kill -9 "$pid" 2>/dev/null
            break
        fi
        sleep 0.1
    done
    rm -f "$1"
    say "stopped $2 (pid $pid)"
}

if [ ! -d "$dir" ]; then
    say "nothing to stop: no $dir"
    exit 0
fi

if [ -f "$dir/slurm.conf" ] && pid_of "$dir/slurmctld.pid" slurmctld >/dev/null; then
    # Every job of this cluster (and only this cluster: SLURM_CONF names it) is canceled.
    ids=$(SLURM_CONF=$dir/slurm.conf squeue -h -o %A 2>/dev/null | sort -u)
    if [ -n "$ids" ]; then
        # shellcheck disable=SC2086 # one id per word
        SLURM_CONF=$dir/slurm.conf scancel --quiet $ids 2>/dev/null || true
    fi
    i=0
    while [ -n "$(SLURM_CONF=$dir/slurm.conf squeue -h -t running,completing -o %i 2>/dev/null)" ]; do
        i=$((i + 1))
        [ $i -le 150 ] || break
        sleep 0.1
    done
fi

stop "$dir/slurmd.pid" slurmd
stop "$dir/slurmctld.pid" slurmctld
stop "$dir/munge/munged.pid" munged

# slurmstepd processes of this cluster, if slurmd went first: found by the spool directory
# they were started with (their command line names it), never by name alone.
for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$(cat "$p/comm" 2>/dev/null)" = slurmstepd ] || continue
    if tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qx "SLURM_CONF=$dir/slurm.conf"; then
        kill -9 "$pid" 2>/dev/null && say "killed slurmstepd $pid"
    fi
done

if [ "${RXJOB_SLURM_KEEP:-0}" != 1 ]; then
    rm -rf "$dir/state" "$dir/spool"
fi
exit 0
