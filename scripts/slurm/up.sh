#!/bin/sh
# up.sh - bring up a one-node Slurm cluster on this machine, for rxjob's tests and benchmarks.
#
# Starts three background processes, each with a pid file in the cluster directory: munged (its
# own key, socket and seed in the directory, so a system munged is neither needed nor touched),
# slurmctld and slurmd (as root, no systemd, no cgroups: proctrack/linuxproc, task/none,
# accounting off). Writes slurm.conf there, waits until sinfo shows the node idle, and prints
# the environment to use:
#
#   eval "$(scripts/slurm/up.sh)"     # exports SLURM_CONF
#   srun hostname; sbatch --wrap true
#   scripts/slurm/down.sh             # ends only what up.sh started
#
# Already up (its pid files name live processes): prints the environment and exits 0.
# Environment (all optional):
#   RXJOB_SLURM_DIR    cluster directory (default /tmp/rxjob-slurm)
#   RXJOB_SLURM_CPUS   CPUs the node offers (default: the online CPUs, at least 8, so that
#                      tests can run more tasks at once than a small VM has cores; slurmd is
#                      told to trust the configuration: SlurmdParameters=config_overrides)
#   RXJOB_SLURM_PORT   slurmctld's port (default 16817); slurmd uses the next one
# Needs: slurm-wlm and munge (scripts/install-deps.sh), root. Exit 1 with a reason when the
# cluster cannot be brought up (the logs are in the cluster directory).
set -eu

dir=${RXJOB_SLURM_DIR:-/tmp/rxjob-slurm}
port=${RXJOB_SLURM_PORT:-16817}
dport=$((port + 1))

say() { echo "slurm/up.sh: $*" >&2; }
fail() {
    say "$*"
    exit 1
}

alive() { # alive PIDFILE: the process it names runs
    [ -s "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1) || return 1
    [ "$state" != Z ] && [ "$state" != X ]
}

print_env() {
    echo "export SLURM_CONF=$dir/slurm.conf"
}

[ "$(id -u)" = 0 ] || fail "must run as root (slurmd runs jobs as their users)"
for prog in munged slurmctld slurmd sinfo scontrol; do
    command -v "$prog" >/dev/null 2>&1 || [ -x "/usr/sbin/$prog" ] ||
        fail "$prog is missing: install slurm-wlm and munge (scripts/install-deps.sh)"
done
PATH=$PATH:/usr/sbin:/sbin

if alive "$dir/munge/munged.pid" && alive "$dir/slurmctld.pid" && alive "$dir/slurmd.pid"; then
    say "already up in $dir"
    print_env
    exit 0
fi
# Half up (a crash, or a previous run cut short): end what is left, start again.
if [ -e "$dir" ]; then
    "$(dirname "$0")/down.sh" >/dev/null 2>&1 || true
fi

mkdir -p "$dir/munge" "$dir/state" "$dir/spool"
chmod 0755 "$dir"
chmod 0700 "$dir/munge" "$dir/state"

# --- munge: a key of our own, created when missing -------------------------------------------
if [ ! -s "$dir/munge/munge.key" ]; then
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile="$dir/munge/munge.key" >/dev/null 2>&1 ||
            dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 2>/dev/null
    else
        dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 2>/dev/null
    fi
fi
chmod 0400 "$dir/munge/munge.key"
msock=$dir/munge/munge.socket
munged --key-file="$dir/munge/munge.key" --socket="$msock" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" --force ||
    fail "munged did not start; see $dir/munge/munged.log"
i=0
while [ ! -S "$msock" ]; do
    i=$((i + 1))
    [ $i -le 50 ] || fail "munged's socket $msock did not appear; see $dir/munge/munged.log"
    sleep 0.1
done

# --- slurm.conf -------------------------------------------------------------------------------
host=$(hostname -s)
cpus=${RXJOB_SLURM_CPUS:-$(nproc)}
if [ -z "${RXJOB_SLURM_CPUS:-}" ] && [ "$cpus" -lt 8 ]; then
    cpus=8
fi
mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 / 2 }' /proc/meminfo)
[ "$mem_mb" -gt 1024 ] && mem_mb=1024
[ "$mem_mb" -ge 64 ] || mem_mb=64

cat >"$dir/slurm.conf" <<EOF
# Written by rxjob's scripts/slurm/up.sh: a one-node cluster for tests. Not for production.
ClusterName=rxjobtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$dport
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$msock
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Schedule as soon as something changes, and backfill every second: a test cluster should not
# make array tasks wait for the default 30 s cycle.
SchedulerParameters=sched_min_interval=0,batch_sched_delay=0,bf_interval=1
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=30
KillWait=5
MaxArraySize=100001
MaxJobCount=200000
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

export SLURM_CONF="$dir/slurm.conf"

# --- slurmctld and slurmd: daemons with pid files (SlurmctldPidFile, SlurmdPidFile) ----------
# -i: ignore state files that do not match this configuration (a previous run's).
slurmctld -f "$SLURM_CONF" -i || fail "slurmctld did not start; see $dir/slurmctld.log"
slurmd -f "$SLURM_CONF" -N "$host" || fail "slurmd did not start; see $dir/slurmd.log"

i=0
while :; do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -n 1) || state=
    case $state in
    idle | idle\~ | mixed | allocated) break ;;
    drain* | down* | fail* | inval*)
        scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
        ;;
    esac
    i=$((i + 1))
    if [ $i -gt 300 ]; then
        say "node $host is not idle after 30 s (state '${state:-no answer}'):"
        tail -n 5 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 2>/dev/null || true
        exit 1
    fi
    sleep 0.1
done
say "up in $dir: node $host, $cpus CPUs, slurmctld on port $port"
print_env
