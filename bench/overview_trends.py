"""What the overview's last-hour lines cost: `History.ready_trends` (one query that keeps each
span's last full poll per queue) against the plain way, reading every sample of the hour
(`History.recent`) and bucketing it in Python, on the same file in the same run.

Builds a history of `--queues` tenant queues polled every `--refresh` seconds for an hour, then
times both ways (median of `--repeat`) and checks that they give the same lines.
Run: .venv/bin/python bench/overview_trends.py [--queues 5000] [--refresh 10] [--repeat 3]
"""

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from dashboard.reads.history import History
from dashboard.reads.models import Overview, TenantRow, Totals
from dashboard.reads.trends import SPANS, WINDOW_SECONDS


def build(queues: int, refresh: float, now: float) -> History:
    history = History(Path(tempfile.mkdtemp()) / "history.sqlite", 2 * WINDOW_SECONDS, "bench")
    rows = [
        TenantRow(tenant=f"t{n}", vhost="/", queue=f"q{n}", ready=0, unacked=0, total=0,
                  consumers=1, queue_type="classic")
        for n in range(queues)
    ]  # fmt: skip
    totals = Totals(tenants=queues, queues=queues, ready=0, unacked=0, total=0, consumers=0)
    overview = Overview(
        vhost="/", exchange="x", rows=rows, totals=totals, fetched_at=datetime.now(UTC)
    )
    rng = random.Random(7)
    at = now - WINDOW_SECONDS
    while at <= now:
        for row in rows:
            row.ready = rng.randint(0, 1000)
        history.record(overview, at)
        at += refresh
    return history


def bucketed(history: History, since: float, until: float) -> dict[str, list[int | None]]:
    """The plain way: every sample of the window read, and the one of each span's last full
    poll (the first poll of a minute, which writes every queue) kept in Python."""
    span = (until - since) / SPANS
    with sqlite3.connect(history.path) as db:
        full = {at for (at,) in db.execute("SELECT at FROM full_polls WHERE at >= ?", (since,))}
    last: dict[int, float] = {}
    for at in sorted(full):
        if at < until:
            last[int((at - since) / span)] = at
    kept = {at: index for index, at in last.items()}
    lines: dict[str, list[int | None]] = {}
    for queue, samples in history.recent("/", since).items():
        line: list[int | None] = [None] * SPANS
        for sample in samples:
            if sample.at in kept:
                line[kept[sample.at]] = sample.ready
        lines[queue] = line
    return lines


def timed(work, repeat: int) -> tuple[float, object]:
    seconds, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queues", type=int, default=5000)
    parser.add_argument("--refresh", type=float, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    now = time.time()
    history = build(args.queues, args.refresh, now)
    since = now - WINDOW_SECONDS
    plain, lines = timed(lambda: bucketed(history, since, now), args.repeat)
    query, trends = timed(lambda: history.ready_trends("/", since, now, SPANS), args.repeat)
    same = sum(trends.get(queue) == line for queue, line in lines.items())
    print(
        f"{args.queues:,} queues, a poll every {args.refresh:g} s for an hour: "
        f"read and bucket {plain:.2f} s, ready_trends {query:.2f} s "
        f"({plain / query:.1f}x faster); {same:,} of {len(lines):,} lines equal"
    )


if __name__ == "__main__":
    main()
