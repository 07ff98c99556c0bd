"""Warren's own CPU and memory per poll and per one-shot at 10,000 and 100,000 tenant queues,
against a simulated broker (bench/synthetic_broker.py) that answers like a 3.10 node of that
size: planning past what this machine's real broker can hold.

The simulated broker runs as a process of its own, so that its work is not counted. Each size
is measured in a fresh process of Warren's: the console's overview poll (what its background
thread does: the overview read, flagged and recorded in a history file of its own) run
`--polls` times, reporting the CPU seconds of the first poll (above WARREN_STATISTICS_UP_TO:
the topology without statistics and the counts), of the second (which lists the statistics),
the median of the warm ones (counts laid over the topology kept), and the process's peak
resident memory; then `warren tenants --json` as a whole process: its CPU and peak memory.
The last lines give how each figure grows from 10,000 to 100,000 tenants.
Run: .venv/bin/python bench/scale_simulated.py [--sizes 10000 100000] [--polls 6]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def serve(tenants: int) -> tuple[subprocess.Popen, dict[str, str]]:
    """The simulated broker as a process; the settings that point Warren at it."""
    server = subprocess.Popen(
        [sys.executable, str(BENCH / "synthetic_broker.py"), "--tenants", str(tenants)],
        stdout=subprocess.PIPE,
        text=True,
    )
    env = {}
    while len(env) < 2:
        line = server.stdout.readline()
        if not line:
            raise RuntimeError("the simulated broker did not start")
        name, _, value = line.strip().partition("=")
        if name.startswith("WARREN_"):
            env[name] = value
    return server, env


def measure_polls(polls: int) -> None:
    """In this process: the console's overview poll, `polls` times; one JSON line of figures."""
    from dashboard.broker.session import Session
    from dashboard.reads.history import open_history
    from dashboard.reads.poll import overview_poll
    from dashboard.settings import load_settings
    from dashboard.tuning import tune_garbage_collector

    tune_garbage_collector()  # as the console's process does
    settings = load_settings()
    cpu = []
    with Session(settings) as session:
        poll = overview_poll(session, open_history(settings))
        for _ in range(polls):
            started = time.process_time()
            snapshot = poll.refresh()
            cpu.append(time.process_time() - started)
            if snapshot.error is not None:
                raise RuntimeError(str(snapshot.error))
        tenants = snapshot.data.totals.tenants
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"tenants": tenants, "cpu": cpu, "peak_mb": peak}))


def measure(tenants: int, polls: int) -> dict:
    server, urls = serve(tenants)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            env = os.environ | urls | {
                "WARREN_VHOST": "/",
                "WARREN_TENANT_EXCHANGE": "tenants",
                "WARREN_REQUEST_TIMEOUT": "300",
                "WARREN_TOPOLOGY_SECONDS": "3600",
                "WARREN_HISTORY_DB": f"{scratch}/history.sqlite",
                "WARREN_AUDIT_DB": f"{scratch}/audit.sqlite",
            }  # fmt: skip
            run = subprocess.run(
                [sys.executable, __file__, "--measure-polls", str(polls)],
                env=env, check=True, capture_output=True, text=True,
            )  # fmt: skip
            figures = json.loads(run.stdout.splitlines()[-1])
            assert figures["tenants"] == tenants, figures
            one_shot = subprocess.Popen(
                [sys.executable, "-m", "dashboard", "tenants", "--json"],
                env=env, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            _, status, used = os.wait4(one_shot.pid, 0)
            assert status == 0, "warren tenants failed"
    finally:
        server.terminate()
        server.wait(30)
    cpu = figures["cpu"]
    return {
        "tenants": tenants,
        "first": cpu[0],
        "statistics": cpu[1],
        "warm": statistics.median(cpu[2:]),
        "poll_peak_mb": figures["peak_mb"],
        "one_shot_cpu": used.ru_utime + used.ru_stime,
        "one_shot_peak_mb": used.ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--polls", type=int, default=6)
    parser.add_argument("--measure-polls", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_polls:
        measure_polls(args.measure_polls)
        return
    results = []
    for size in args.sizes:
        results.append(measure(size, max(3, args.polls)))
        print(f"measured {size:,}", flush=True)
    print(
        f"\n{'tenants':>8} {'1st poll':>9} {'statistics':>10} {'warm poll':>10}"
        f" {'poll RSS':>9} {'one-shot':>9} {'one-shot RSS':>12}   (CPU seconds, peak MB)"
    )
    for row in results:
        print(
            f"{row['tenants']:>8,} {row['first']:>8.2f}s {row['statistics']:>9.2f}s"
            f" {row['warm']:>9.2f}s {row['poll_peak_mb']:>7.0f}MB {row['one_shot_cpu']:>8.2f}s"
            f" {row['one_shot_peak_mb']:>10.0f}MB"
        )
    if len(results) > 1:
        small, large = results[0], results[-1]
        times = large["tenants"] / small["tenants"]
        grows = ", ".join(
            f"{key.replace('_', ' ')} {large[key] / small[key]:.1f}x"
            for key in ("first", "statistics", "warm", "poll_peak_mb", "one_shot_cpu")
        )
        print(f"\n{times:.0f}x the tenants costs: {grows}")


if __name__ == "__main__":
    main()
