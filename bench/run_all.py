"""Run every benchmark and print one table: each figure beside its target and its same-run reference.

    .venv/bin/python bench/run_all.py [--quick] [--only ingest,load] [--fresh] [--json FILE]

Runs bench/ingest, bench/segments, bench/activation, bench/journeys and bench/load one after the
other (never together: they would measure each other), each in its own PostgreSQL database
(quorum_bench_all_<name>; the load rig keeps its own, quorum_load) and, where a Celery worker is
involved, Redis DB 6. ``--quick`` picks small sizes so the whole run takes a few minutes; without
it each benchmark runs at its own default size. ``--fresh`` regenerates the data sets that the
segment and journey benchmarks otherwise keep between runs.

A benchmark that has a ``--json FILE`` option is asked for its rows that way; for the others the
table it prints (measure | figure | target | verdict) is read from its output. The full output of
each is kept in a log directory (printed at the end). A benchmark that fails or times out shows as
one FAILED row and the run goes on.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
POSTGRES = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/6")

# name: (script, arguments with --quick, arguments without, environment, time limit in seconds (quick, full))
BENCHES = {
    "ingest": ("bench/ingest/run.py", ["--rows", "5000", "--stream-seconds", "10"], [],
               {"DATABASE_URL": f"{POSTGRES}/quorum_bench_all_ingest"}, (600, 3600)),
    "segments": ("bench/segments/run.py", ["--scale", "tiny", "--runs", "3", "--rounds", "5", "--big-round", "200"], [],
                 {"DATABASE_URL": f"{POSTGRES}/quorum_bench_all_segments"}, (900, 7200)),
    "activation": ("bench/activation/run.py", ["--changes", "10"], [],
                   {"DATABASE_URL": f"{POSTGRES}/quorum_bench_all_activation", "CELERY_BROKER_URL": BROKER}, (600, 1800)),
    "journeys": ("bench/journeys/run.py", ["--scale", "0.05"], [],
                 {"DATABASE_URL": f"{POSTGRES}/quorum_bench_all_journeys"}, (600, 3600)),
    "load": ("bench/load/run.py", ["--seconds", "10", "--lookup-rates", "50,200", "--stream-rates", "500,1500"], [],
             {"DATABASE_URL": f"{POSTGRES}/quorum_load", "CELERY_BROKER_URL": BROKER}, (900, 1800)),
}  # fmt: skip
# Benchmarks that keep a generated data set between runs unless told otherwise.
REUSE_FLAG = {"segments": "--reuse", "journeys": "--reuse"}
COLUMNS = ("bench", "measure", "figure", "target", "reference (same run)", "verdict")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Small sizes: the whole run takes a few minutes.")
    parser.add_argument("--only", help=f"Comma-separated subset of: {', '.join(BENCHES)}.")
    parser.add_argument("--fresh", action="store_true", help="Regenerate the data sets the benchmarks keep between runs.")
    parser.add_argument("--json", metavar="FILE", help="Also write every row as JSON to FILE.")
    args = parser.parse_args()
    args.names = list(BENCHES) if not args.only else [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in args.names if name not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose among {', '.join(BENCHES)}")
    return args


def write_rows_json(path, bench: str, rows, **raw) -> None:
    """The ``--json FILE`` output a benchmark gives this runner: its table rows as objects
    (measure, figure, target, verdict and, optionally, reference) plus any raw figures."""
    rows = [row if isinstance(row, dict) else dict(zip(("measure", "figure", "target", "verdict"), row, strict=True))
            for row in rows]
    Path(path).write_text(json.dumps({"bench": bench, "rows": rows, "raw": raw}, indent=2, default=str))


def has_json_option(script: str) -> bool:
    return '"--json"' in (ROOT / script).read_text()


def rows_from_table(output: str) -> list[dict]:
    """The rows of the last ``measure | figure | target | verdict`` table in a benchmark's output."""
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("measure") and "| figure" in line]
    if not starts:
        return []
    rows = []
    for line in lines[starts[-1] + 2:]:  # skip the header and its ---+--- rule
        if " | " not in line:
            break
        cells = [cell.strip() for cell in line.split(" | ")]
        measure, figure, target, verdict = cells[0], " | ".join(cells[1:-2]), cells[-2], cells[-1]
        rows.append({"measure": measure, "figure": figure, "target": target, "verdict": verdict})
    return rows


def run_bench(name: str, args, log_dir: Path) -> tuple[list[dict], dict]:
    script, quick, full, environment, limits = BENCHES[name]
    command = [PYTHON, script, *(quick if args.quick else full)]
    if name in REUSE_FLAG and not args.fresh:
        command.append(REUSE_FLAG[name])
    json_path = log_dir / f"{name}.json"
    if has_json_option(script):
        command += ["--json", str(json_path)]
    log_path = log_dir / f"{name}.log"
    print(f"==> {name}: {' '.join(command[1:])}", flush=True)
    info = {"load_before": os.getloadavg()[0]}
    started = time.perf_counter()
    try:
        with log_path.open("w") as log:
            finished = subprocess.run(command, cwd=ROOT, env={**os.environ, **environment}, stdout=log,
                                      stderr=subprocess.STDOUT, timeout=limits[0 if args.quick else 1])
        failure = f"exit status {finished.returncode}" if finished.returncode else ""
    except subprocess.TimeoutExpired:
        failure = f"timed out after {limits[0 if args.quick else 1]} s"
    info.update(seconds=time.perf_counter() - started, load_after=os.getloadavg()[0], log=str(log_path))
    output = log_path.read_text(errors="replace")
    if json_path.exists():
        rows = json.loads(json_path.read_text())["rows"]
    else:
        rows = rows_from_table(output)
    if failure or not rows:
        last = [line for line in output.splitlines() if line.strip()][-1:] or ["no output"]
        rows.append({"measure": "(run)", "figure": f"{failure or 'no table in the output'}: {last[0][:90]}",
                     "target": "—", "verdict": "FAILED"})
    print(f"    {len(rows)} rows in {info['seconds']:,.0f} s, load average {info['load_before']:.1f} → {info['load_after']:.1f}",
          flush=True)
    return rows, info


def print_table(rows):
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print(" | ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            print("-+-".join("-" * width for width in widths))


def main():
    args = parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="quorum-bench-all-"))
    print(f"Quorum benchmarks ({'quick' if args.quick else 'full'} preset): {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} at start; logs in {log_dir}", flush=True)
    started, results, infos = time.perf_counter(), [], {}
    for name in args.names:
        rows, infos[name] = run_bench(name, args, log_dir)
        results += [{"bench": name, **row} for row in rows]
    table = [COLUMNS] + [
        (row["bench"], row["measure"], row["figure"], row["target"], row.get("reference", ""), row["verdict"])
        for row in results
    ]
    print()
    print_table(table)
    print()
    for name, info in infos.items():
        print(f"{name}: {info['seconds']:,.0f} s, load average {info['load_before']:.1f} → {info['load_after']:.1f}")
    print(f"total {time.perf_counter() - started:,.0f} s; logs in {log_dir}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": results, "runs": infos}, indent=2))
    # A missed target is a result; a benchmark that could not run is an error.
    sys.exit(1 if any(row["verdict"] == "FAILED" for row in results) else 0)


if __name__ == "__main__":
    main()
