#!/usr/bin/env python3
"""compare_report.py - bench/compare's report: reads the run's raw samples (one row per
repetition, workload, metric and system) and writes BASE.md (the Markdown report), BASE.csv (the
summary: median, min and max of each figure over the repetitions) and BASE.gp + BASE.dat (the
gnuplot script and data of BASE.png, which bench/compare runs). Standard library only.

Ratios are rxjob's median over the peer's median, in the same run. Each goal of issue #6 is
judged on those medians: MET or NOT MET.
"""
import argparse
import os
import csv
import statistics
import sys

SYSTEM_NAMES = {
    "rxjob": "rxjob (CLI)",
    "rxapi": "rxjob (C API)",
    "tsp": "task-spooler",
    "nq": "nq (1 slot)",
    "slurm": "Slurm",
    "floor": "floor",
}

# (workload, metric, rxjob system, peer system or None, goal kind, goal value, label)
# goal kinds: ge/le = ratio rxjob/peer at least / at most; abs_ge/abs_le = rxjob's median.
ROWS = [
    ("W1", "jobs_per_s", "rxjob", "slurm", "ge", 50, "jobs/s, submit N then wait for all"),
    ("W1", "jobs_per_s", "rxjob", "tsp", "ge", 3, "jobs/s, submit N then wait for all"),
    ("W1", "jobs_per_s", "rxjob", "nq", None, None, "jobs/s, submit N then wait for all"),
    ("W1", "jobs_per_s", "rxapi", "slurm", "ge", 50, "jobs/s, submit N then wait for all"),
    ("W1", "jobs_per_s", "rxapi", "tsp", "ge", 3, "jobs/s, submit N then wait for all"),
    ("W1", "all_done_s", "rxjob", "tsp", None, None, "s to all done"),
    ("W1", "all_done_s", "rxjob", "nq", None, None, "s to all done"),
    ("W2", "p50_ms", "rxjob", "slurm", "le", 1 / 500, "ms submit -> finished, p50"),
    ("W2", "p50_ms", "rxjob", "tsp", "le", 1 / 2, "ms submit -> finished, p50"),
    ("W2", "p50_ms", "rxjob", "nq", None, None, "ms submit -> finished, p50"),
    ("W2", "p50_ms", "rxapi", "slurm", "le", 1 / 500, "ms submit -> finished, p50"),
    ("W2", "p50_ms", "rxapi", "tsp", "le", 1 / 2, "ms submit -> finished, p50"),
    ("W2", "p99_ms", "rxjob", "slurm", None, None, "ms submit -> finished, p99"),
    ("W2", "p99_ms", "rxjob", "tsp", None, None, "ms submit -> finished, p99"),
    ("W2", "p99_ms", "rxjob", "nq", None, None, "ms submit -> finished, p99"),
    ("W2", "p99_ms", "rxapi", "tsp", None, None, "ms submit -> finished, p99"),
    ("W3", "p50_ms", "rxjob", "slurm", "le", 1 / 4, "ms status query, p50 (squeue -j)"),
    ("W3", "p50_ms", "rxjob", "tsp", "le", 1, "ms status query, p50 (tsp -s)"),
    ("W3", "p50_ms", "rxapi", None, "abs_le", 0.2, "ms status query, p50 (rx_get_job_status)"),
    ("W4", "tasks_per_s", "rxjob", "floor:spawn_per_s", "ge", 0.8, "command tasks/s, one job"),
    ("W4", "chunk_tasks_per_s", "rxjob", "floor:spawn_per_s", "ge", 0.8,
     "command tasks/s, one job, --chunk-size"),
    ("W4", "tasks_per_s", "rxjob", "slurm", None, None, "command tasks/s (Slurm: one array)"),
    ("W4", "fn_tasks_per_s", "rxapi", None, "abs_ge", 100000, "C-function tasks/s via rxjobd"),
    ("W5", "cancel_gone_ms", "rxjob", "tsp", None, None, "ms cancel -> process group gone"),
    ("W5", "cancel_gone_ms", "rxjob", "nq", None, None, "ms cancel -> process group gone"),
    ("W5", "cancel_gone_ms", "rxjob", "slurm", None, None, "ms cancel -> process group gone"),
    ("W5", "cancel_gone_ms", "rxjob", None, "abs_le", "grace+10", "ms cancel -> process group gone"),
]

FLOORS = [
    ("rt_p50_ms", "AF_UNIX 1-byte round trip, p50 (ms)"),
    ("fdatasync_p50_ms", "4 KiB pwrite + fdatasync, p50 (ms)"),
    ("spawn_per_s", "posix_spawnp(true) + waitpid, 2 at once (/s)"),
]

# The chart: one group per workload figure, one bar per system.
CHART = [
    ("W1 jobs/s", "W1", "jobs_per_s"),
    ("W2 p50 ms", "W2", "p50_ms"),
    ("W3 p50 ms", "W3", "p50_ms"),
    ("W4 tasks/s", "W4", "tasks_per_s"),
    ("W4 chunked/s", "W4", "chunk_tasks_per_s"),
    ("W4 fn tasks/s", "W4", "fn_tasks_per_s"),
    ("W5 cancel ms", "W5", "cancel_gone_ms"),
]
CHART_SYSTEMS = ["rxjob", "rxapi", "tsp", "nq", "slurm", "floor"]
CHART_FLOORS = {("W4", "tasks_per_s"): "spawn_per_s", ("W4", "chunk_tasks_per_s"): "spawn_per_s"}  # the floor's bar, where there is one


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}".replace(",", " ")
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def fmt_ratio(r):
    if r is None:
        return "-"
    if r >= 10:
        return f"{r:.0f}x"
    if r >= 0.1:
        return f"{r:.2f}x"
    return f"1/{1 / r:.0f}" if r > 0 else "0"


def main():
    ap = argparse.ArgumentParser()
    for opt in ("raw", "base", "reps", "quick", "slots", "grace-ms", "nproc", "kernel", "cpu",
                "load-start", "load-end", "elapsed-s", "rxjob-version", "tsp-version",
                "nq-version", "slurm-version", "sizes"):
        ap.add_argument("--" + opt, required=True)
    a = ap.parse_args()
    grace_ms = float(a.grace_ms)

    samples = {}  # (workload, metric, system) -> [values]
    sizes = {}
    units = {}
    with open(a.raw, newline="") as f:
        for row in csv.DictReader(f):
            key = (row["workload"], row["metric"], row["system"])
            samples.setdefault(key, []).append(float(row["value"]))
            sizes[key] = row["size"]
            units[key] = row["unit"]
    summary = {k: (statistics.median(v), min(v), max(v), len(v)) for k, v in samples.items()}

    with open(a.base + ".csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["workload", "metric", "system", "size", "runs", "median", "min", "max",
                    "unit"])
        for k in sorted(summary):
            med, lo, hi, n = summary[k]
            w.writerow([k[0], k[1], k[2], sizes[k], n, f"{med:.6g}", f"{lo:.6g}", f"{hi:.6g}",
                        units[k]])

    def cell(key):
        if key not in summary:
            return None, "n/a"
        med, lo, hi, _ = summary[key]
        return med, f"{fmt(med)} ({fmt(lo)}–{fmt(hi)}), n={sizes[key]}"

    out = []
    p = out.append
    p(f"# rxjob beside its peers: bench/compare{' --quick' if a.quick == '1' else ''}")
    p("")
    p(f"- machine: {a.nproc} CPUs ({a.cpu}), {a.kernel}")
    p(f"- load at start: `{a.load_start.strip()}`")
    p(f"- load at end: `{a.load_end.strip()}`")
    p(f"- run time: {a.elapsed_s} s, {a.reps} repetition(s), every workload on every system in "
      "turn within each repetition")
    p(f"- versions: {a.rxjob_version}; task-spooler {a.tsp_version}; nq {a.nq_version}; "
      f"Slurm {a.slurm_version}")
    slurm_slots = f", one Slurm node of {a.slots} CPUs" if a.slurm_version not in ("-", "") else ""
    p(f"- slots: {a.slots} for each system (rxjobd --slots {a.slots}, tsp -S {a.slots}"
      f"{slurm_slots}), except nq: a serial queue, 1 job at a time")
    p(f"- rxjobd --grace-ms: {a.grace_ms} (default of this build)")
    p(f"- sizes: {a.sizes}")
    p("")
    p("Cells: median (min–max) over the repetitions, n = jobs, tasks or samples per repetition. "
      "Ratio = rxjob's median / the peer's median. Latencies through a CLI include starting "
      "the CLI program each time (rxjob, tsp, nq, sbatch/squeue alike).")
    p("")
    p("| workload | metric | rxjob median (min–max) | peer | peer median (min–max) | ratio "
      "| goal | MET/NOT MET |")
    p("| --- | --- | --- | --- | --- | --- | --- | --- |")
    goals = []
    for wl, metric, rxs, peer, kind, val, label in ROWS:
        rx_med, rx_cell = cell((wl, metric, rxs))
        if peer is None:
            peer_name, peer_med, peer_cell = "-", None, "-"
        elif peer.startswith("floor:"):
            pm = peer.split(":")[1]
            peer_name = "floor"
            peer_med, peer_cell = cell(("floor", pm, "floor"))
        else:
            peer_name = SYSTEM_NAMES[peer]
            peer_med, peer_cell = cell((wl, metric, peer))
        if peer is not None and peer_med is None:
            continue  # that peer was left out of this run
        ratio = rx_med / peer_med if rx_med is not None and peer_med else None
        goal, verdict = "-", "-"
        if kind in ("ge", "le") and ratio is not None:
            goal = (f"≥ {val:g}x" if kind == "ge" and val >= 1 else
                    f"≥ {val * 100:.0f} %" if kind == "ge" else
                    f"≤ 1/{1 / val:.0f}" if val < 1 else f"≤ {val:g}x")
            ok = ratio >= val if kind == "ge" else ratio <= val
            verdict = "MET" if ok else "NOT MET"
        elif kind in ("abs_ge", "abs_le") and rx_med is not None:
            limit = grace_ms + 10 if val == "grace+10" else float(val)
            goal = (f"≥ {fmt(limit)}" if kind == "abs_ge" else
                    f"≤ {fmt(limit)}" + (" (grace + 10 ms)" if val == "grace+10" else ""))
            ok = rx_med >= limit if kind == "abs_ge" else rx_med <= limit
            verdict = "MET" if ok else "NOT MET"
        if verdict != "-":
            goals.append((wl, SYSTEM_NAMES[rxs], peer_name, verdict))
        ratio_s = f"{ratio * 100:.0f} %" if peer_name == "floor" and ratio else fmt_ratio(ratio)
        p(f"| {wl} | {label} | {SYSTEM_NAMES[rxs]}: {rx_cell} | {peer_name} | {peer_cell} | "
          f"{ratio_s} | {goal} | {'**' + verdict + '**' if verdict == 'NOT MET' else verdict} |")
    p("")
    met = sum(1 for g in goals if g[3] == "MET")
    p(f"Goals: {met} of {len(goals)} MET.")
    p("")
    p("Floors, measured in the same run (bench_server --floors, once per repetition):")
    p("")
    p("| floor | median (min–max) |")
    p("| --- | --- |")
    for metric, label in FLOORS:
        _, c = cell(("floor", metric, "floor"))
        p(f"| {label} | {c} |")
    p("")

    # Chart data and script.
    with open(a.base + ".dat", "w") as f:
        f.write("figure " + " ".join('"' + SYSTEM_NAMES[s] + '"' for s in CHART_SYSTEMS) + "\n")
        for title, wl, metric in CHART:
            vals = []
            for s in CHART_SYSTEMS:
                k = ("floor", CHART_FLOORS.get((wl, metric), "-"), "floor") if s == "floor" else (wl, metric, s)
                vals.append(f"{summary[k][0]:.6g}" if k in summary and summary[k][0] > 0 else "-")
            f.write(f'"{title}" ' + " ".join(vals) + "\n")
    png = a.base + ".png"
    with open(a.base + ".gp", "w") as f:
        f.write(f"""set terminal pngcairo size 1100,600 font ",10"
set output "{png}"
set title "rxjob beside its peers: medians of {a.reps} repetition(s), {a.nproc} CPUs (log scale; higher is better for /s, lower for ms)"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set grid ytics
set key outside right top
set yrange [0.01:*]
plot for [i=2:{1 + len(CHART_SYSTEMS)}] "{a.base}.dat" using i:xtic(1) title columnheader(i)
""")
    p(f"Chart: `{os.path.basename(png)}`, beside this report (grouped bars of the medians "
      "above, log scale).")
    with open(a.base + ".md", "w") as f:
        f.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
