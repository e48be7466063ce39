#!/usr/bin/env bash
# kill9.sh - kill -9 rxjobd at random moments during concurrent submissions, restart it, and
# check that no acknowledged job was lost or duplicated (DESIGN.md: "a job once acknowledged is
# never lost"), that no half-written job appears, and that the tasks running at the crash are
# adopted with their exit status. Not a ctest check (the full form runs for hours);
# tests/check_kill9.sh runs a small form in CI.
#
# Each round, with a fresh state directory:
#   1. start rxjobd (--slots 2) and CLIENTS processes of tests/stress/kill9_client.c, which
#      submit JOBS jobs between them through the public API and record each acknowledged one
#      (rx_exec returned its id) with its marker and expected exit status K;
#   2. kill -9 the daemon once a random share (5%..95%) of the jobs is acknowledged, let the
#      clients stop, note which tasks had started (each appends a line to a file named by its
#      marker), and start the daemon again on the same state;
#   3. list the jobs (GET /v1/jobs) and count
#        lost        acknowledged ids missing from the list,
#        dup         ids listed twice, or markers whose task ran more than once,
#        extra       ids listed but never acknowledged (a submission in flight at the crash,
#                    committed but not answered: allowed, at most one per client),
#        bad         listed jobs that are not a well-formed one-task job in a known status,
#        running     tasks running at the crash (started, not ended: no MARK.end file),
#        adopted     of those, how many ended after the restart with their exit status K
#                    (checked in their results); adop-bad: a wrong status, or lost. Tasks that
#                    had ended before the crash are checked the same way (counted in bad);
#   4. with --drain (default): wait until every job has ended and check that each acknowledged
#      task ran exactly once and each job ended FINISHED (K = 0) or FAILED (K > 0).
# One line per round, a total line at the end; exit status 1 if anything was lost, duplicated,
# malformed, ran twice, or came back with a wrong exit status.
#
# Usage: bash tests/stress/kill9.sh BUILD_DIR [--rounds N] [--jobs N] [--clients N]
#                                              [--no-drain] [--seed S]
# Full form: --rounds 50 --jobs 10000 (hours on a small machine; --no-drain makes it shorter).
set -euo pipefail
export LC_ALL=C

build=${1:?usage: kill9.sh BUILD_DIR [--rounds N] [--jobs N] [--clients N] [--no-drain]}
shift
rounds=50
jobs=10000
clients=4
drain=1
seed=${RANDOM}
while [[ $# -gt 0 ]]; do
    case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --no-drain) drain=0; shift ;;
    --seed) seed=$2; shift 2 ;;
    *) echo "kill9.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
RANDOM=$seed
build=$(cd "$build" && pwd)
rxjobd="$build/rxjobd"
rxjob="$build/rxjob"
client="$build/tests/stress_kill9_client"
[[ -x $client ]] || client="$build/stress_kill9_client"
[[ -x $client ]] || { echo "kill9.sh: no stress_kill9_client in $build (build it)" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rxjob-kill9.XXXXXX")
sock="$tmp/s.sock"
daemon_pid=""
client_pids=()

cleanup() {
    for p in "${client_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

rx() { "$rxjob" --url "unix:$sock" "$@"; }

# GET PATH -> $tmp/get.json; the HTTP status is echoed.
get() {
    curl -sS --max-time 120 --unix-socket "$sock" -o "$tmp/get.json" -w '%{http_code}' \
        "http://localhost$1" 2>>"$tmp/curl.err" || true
}

start_daemon() {
    "$rxjobd" --foreground --socket "$sock" --state-dir "$1" --slots 2 2>>"$tmp/rxjobd.log" &
    daemon_pid=$!
    for _ in $(seq 1 400); do
        [[ $(get /v1/daemon) == 200 ]] && return 0
        sleep 0.05
    done
    echo "kill9.sh: rxjobd did not answer; its log:" >&2
    tail -20 "$tmp/rxjobd.log" >&2
    exit 1
}

# The jobs listed now as "ID STATUS N_TASKS" lines, sorted by id.
list_jobs() {
    [[ $(get /v1/jobs) == 200 ]] || { echo "kill9.sh: GET /v1/jobs failed" >&2; return 1; }
    grep -o '"id":[0-9]*,"status":"[A-Z]*","n_tasks":[0-9]*' "$tmp/get.json" |
        sed 's/"id":\([0-9]*\),"status":"\([A-Z]*\)","n_tasks":\([0-9]*\)/\1 \2 \3/' | sort -n
}

acked_lines() { (cat "$1"/ack.* 2>/dev/null || true) | sort -n; }

printf '%-5s %8s %6s %5s %5s %5s %7s %7s %8s %6s %s\n' round acked lost dup extra bad running adopted adop-bad ran2x seconds
tot_acked=0 tot_lost=0 tot_dup=0 tot_extra=0 tot_bad=0 tot_adopted=0 tot_adopt_bad=0 tot_ran2=0
tot_running=0
t_all=$(date +%s)
for ((r = 1; r <= rounds; r++)); do
    t0=$(date +%s)
    rd=$tmp/r$r
    mkdir -p "$rd/marks"
    start_daemon "$rd/state"

    per=$(((jobs + clients - 1) / clients))
    client_pids=()
    for ((c = 0; c < clients; c++)); do
        "$client" "unix:$sock" "$c" "$per" "$rd/marks" "$rd/ack.$c" 2>>"$rd/clients.log" &
        client_pids+=($!)
    done
    # Kill once a random share of the jobs is acknowledged (or the clients are done).
    target=$((jobs * (5 + RANDOM % 91) / 100))
    for _ in $(seq 1 12000); do
        n=$( (cat "$rd"/ack.* 2>/dev/null || true) | wc -l)
        [[ $n -ge $target ]] && break
        alive=0
        for p in "${client_pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [[ $alive == 1 ]] || break
        sleep 0.01
    done
    { kill -KILL "$daemon_pid"; } 2>/dev/null
    # What had ended at the crash, at once: the tasks running then go on under their supervisors.
    ls "$rd/marks" | sed -n 's/\.end$//p' | sort >"$rd/ended_before"
    { wait "$daemon_pid" || true; } 2>/dev/null
    daemon_pid=""
    for p in "${client_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    client_pids=()
    sleep 0.3 # a shim spawned just before the kill writes its task's marker
    ls "$rd/marks" | grep -v '\.end$' | sort >"$rd/started_before" || true
    comm -23 "$rd/started_before" "$rd/ended_before" >"$rd/running_at_crash"
    acked_lines "$rd" >"$rd/acked"                    # ID MARK K SLEEP
    cut -d' ' -f1 "$rd/acked" | sort >"$rd/acked_ids" # as text, for comm

    start_daemon "$rd/state"
    list_jobs >"$rd/listed"
    cut -d' ' -f1 "$rd/listed" | sort >"$rd/listed_ids"
    acked=$(wc -l <"$rd/acked")
    lost=$(comm -23 "$rd/acked_ids" "$rd/listed_ids" | wc -l)
    dup=$(uniq -d "$rd/listed_ids" | wc -l)
    extra=$(comm -13 "$rd/acked_ids" <(sort -u "$rd/listed_ids") | wc -l)
    bad=$(awk '$3 != 1 || $2 !~ /^(QUEUED|RUNNING|FINISHED|FAILED)$/' "$rd/listed" | wc -l)
    [[ $extra -le $clients ]] || bad=$((bad + extra - clients))

    # Tasks that had started before the crash: each must end with its exit status K.
    adopted=0 adopt_bad=0
    running=$(wc -l <"$rd/running_at_crash")
    while read -r id mark k _; do
        was_running=0
        if grep -qxF "$mark" "$rd/running_at_crash"; then was_running=1; fi
        if ! rx wait --timeout 120 "$id" >/dev/null 2>&1 && [[ $k == 0 ]]; then
            if [[ $was_running == 1 ]]; then adopt_bad=$((adopt_bad + 1)); else bad=$((bad + 1)); fi
            echo "round $r: job $id ($mark) did not finish: $(rx status "$id" 2>&1)" >>"$rd/problems"
            continue
        fi
        rx --json results --keep "$id" 2>/dev/null | tr -d ' \n' >"$rd/res.json" || true
        if [[ $k == 0 ]] && grep -q '"state":"OK"' "$rd/res.json"; then
            adopted=$((adopted + was_running))
        elif [[ $k != 0 ]] && grep -q '"state":"EXIT","error":"[^"]*","exit_status":'"$k"',' "$rd/res.json"; then
            adopted=$((adopted + was_running))
        else
            if [[ $was_running == 1 ]]; then adopt_bad=$((adopt_bad + 1)); else bad=$((bad + 1)); fi
            echo "round $r: job $id ($mark, K=$k) after restart: $(cat "$rd/res.json")" >>"$rd/problems"
        fi
    done < <(join -1 2 -2 1 -o 1.1,1.2,1.3,1.4 <(sort -k2,2 "$rd/acked") "$rd/started_before" | sort -n)

    # Drain: every job ends, each acknowledged task ran exactly once, with its status.
    ran2=0
    if [[ $drain == 1 ]]; then
        for _ in $(seq 1 3600); do
            [[ $(get '/v1/jobs?state=queued,running') == 200 ]] || break
            grep -q '"id"' "$tmp/get.json" || break
            sleep 0.5
        done
        list_jobs >"$rd/listed_end"
        while read -r id mark k _; do
            lines=$(wc -l <"$rd/marks/$mark" 2>/dev/null || echo 0)
            [[ $lines -le 1 ]] || {
                ran2=$((ran2 + 1))
                echo "round $r: $mark (job $id) ran $lines times" >>"$rd/problems"
            }
        done <"$rd/acked"
        # FINISHED for K = 0, FAILED for K > 0 (a task lost in the crash fails its job too: only
        # those that had started before it may be FAILED with K = 0, as adopted-bad above).
        wrong=$(join <(sort -k1,1 "$rd/acked") <(sort -k1,1 "$rd/listed_end") |
            awk '($3 == 0 && $5 != "FINISHED") || ($3 != 0 && $5 != "FAILED")' |
            join -v1 -1 2 -2 1 <(sort -k2,2 /dev/stdin) "$rd/started_before" | wc -l)
        bad=$((bad + wrong))
    fi

    kill -TERM "$daemon_pid"
    wait "$daemon_pid" 2>/dev/null || true
    daemon_pid=""
    printf '%-5s %8s %6s %5s %5s %5s %7s %7s %8s %6s %s\n' "$r" "$acked" "$lost" "$dup" "$extra" \
        "$bad" "$running" "$adopted" "$adopt_bad" "$ran2" "$(($(date +%s) - t0))"
    [[ -s $rd/problems ]] && head -5 "$rd/problems"
    tot_acked=$((tot_acked + acked)) tot_lost=$((tot_lost + lost)) tot_dup=$((tot_dup + dup))
    tot_extra=$((tot_extra + extra)) tot_bad=$((tot_bad + bad)) tot_ran2=$((tot_ran2 + ran2))
    tot_adopted=$((tot_adopted + adopted)) tot_adopt_bad=$((tot_adopt_bad + adopt_bad))
    tot_running=$((tot_running + running))
    # Leftover task processes of this round have ended (drain) or end within a second.
    rm -rf "$rd/state" "$rd/marks"
done
printf '%-5s %8s %6s %5s %5s %5s %7s %7s %8s %6s %s\n' total "$tot_acked" "$tot_lost" "$tot_dup" \
    "$tot_extra" "$tot_bad" "$tot_running" "$tot_adopted" "$tot_adopt_bad" "$tot_ran2" \
    "$(($(date +%s) - t_all))"
echo "kill9.sh: $rounds rounds x $jobs jobs, $clients clients, seed $seed, drain $drain"
[[ $tot_lost == 0 && $tot_dup == 0 && $tot_bad == 0 && $tot_adopt_bad == 0 && $tot_ran2 == 0 ]]
