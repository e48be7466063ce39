#!/usr/bin/env bash
# bench_slurm.sh BUILD_DIR [N] - one N-task job through rxjob on the Slurm executor against N
# separate `sbatch --wrap` calls of the same command, on the same cluster in the same run
# (issue 4's benchmark; N defaults to 500).
#
# The command writes the time it started (`date +%s.%N`). For each side:
#   - submit: the time to hand the work to the system (rxjob exec; the N sbatch calls);
#   - first start: submit call -> the earliest task's own start stamp;
#   - all done: submit call -> rxjob wait returns / squeue shows none of the N jobs left.
# Uses the cluster in $SLURM_CONF if set and answering, else brings one up with
# scripts/slurm/up.sh (and takes it down at the end). Needs root for the latter.
# shellcheck disable=SC2016 # the tasks' shell code is single-quoted on purpose
set -euo pipefail
export LC_ALL=C

build_dir=$(cd "${1:?usage: bench_slurm.sh BUILD_DIR [N]}" && pwd)
n=${2:-500}
src_dir=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/bench_slurm.XXXXXX)
chmod 0755 "$tmp"
daemon_pid=
own_cluster=0

cleanup() {
    if [[ -n $daemon_pid ]]; then
        kill "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    if ((own_cluster)); then
        RXJOB_SLURM_DIR=$tmp/slurm "$src_dir/scripts/slurm/down.sh" >/dev/null 2>&1 || true
    fi
    rm -rf -- "$tmp"
}
trap cleanup EXIT

if [[ -z ${SLURM_CONF:-} ]] || ! sinfo -h >/dev/null 2>&1; then
    own_cluster=1
    eval "$(RXJOB_SLURM_DIR=$tmp/slurm RXJOB_SLURM_PORT=18500 "$src_dir/scripts/slurm/up.sh")"
    export SLURM_CONF
fi
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
cpus=$(sinfo -h -o %c | head -n 1)

# --- rxjob: one job of N tasks ---------------------------------------------------------------
sock=$tmp/s.sock
"$build_dir/rxjobd" --foreground --socket "$sock" --state-dir "$tmp/state" --executor slurm \
    >"$tmp/rxjobd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 200); do
    "$build_dir/rxjob" --url "unix:$sock" jobs >/dev/null 2>&1 && break
    sleep 0.05
done
rx() { "$build_dir/rxjob" --url "unix:$sock" "$@"; }
t0=$(now)
id=$(rx exec --times "$n" -- sh -c 'date +%s.%N >"$RXJOB_RESULT"')
t_sub=$(now)
status=$(rx wait "$id") || true
t_done=$(now)
first=$(rx --json results "$id" | python3 -c 'import base64, json, sys
d = json.load(sys.stdin)
print(min(float(base64.b64decode(s["value_b64"])) for s in d["slots"] if s["state"] == "OK"))')
echo "rxjob ($status): $n tasks as one array on $cpus CPUs: submit $(sub "$t0" "$t_sub") s," \
    "first start $(sub "$t0" "$first") s, all done $(sub "$t0" "$t_done") s"
kill "$daemon_pid"
wait "$daemon_pid" 2>/dev/null || true
daemon_pid=

# --- N separate sbatch --wrap ----------------------------------------------------------------
mkdir -p "$tmp/w"
t0=$(now)
for i in $(seq 0 $((n - 1))); do
    sbatch --parsable -o /dev/null --wrap "date +%s.%N >$tmp/w/$i" >>"$tmp/ids"
done
t_sub=$(now)
ids=$(paste -sd, "$tmp/ids")
while [[ -n $(squeue -h -j "$ids" -t pending,running,completing,configuring -o %i 2>/dev/null) ]]; do
    sleep 0.1
done
t_done=$(now)
first=$(cat "$tmp"/w/* | sort -n | head -n 1)
echo "sbatch --wrap x $n: submit $(sub "$t0" "$t_sub") s, first start $(sub "$t0" "$first") s," \
    "all done $(sub "$t0" "$t_done") s ($(find "$tmp/w" -type f | wc -l) stamps)"
