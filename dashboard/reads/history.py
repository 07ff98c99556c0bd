"""A local history of tenant-queue counts, recorded on each overview poll, for charts longer than
the broker keeps and for rules that need a window ("no ack for 40 minutes").

A SQLite file, or the team's PostgreSQL database (dashboard/database.py), bounded by a retention
period. A store that cannot be written costs the history, never the overview: the failure is
logged and the poll goes on.

A queue's counts are written when they change, and then also the last poll that saw the old
ones, so that a run of equal counts is known from its first poll to its last; and the first
poll of each minute (HEARTBEAT_SECONDS) writes every queue, marked as a full poll, so that the
trends read a few whole polls and a chart's gap is a stretch without polls. Writing every queue
on every poll cost a second of CPU per poll at 100,000 queues, and at 10,000 queues polled every
5 s, 2,000 rows a second: about 17 GB a day.
"""

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from dashboard.database import Database, DatabaseError, Store, Transaction
from dashboard.reads.models import Overview, TenantRow
from dashboard.settings import Settings

log = logging.getLogger(__name__)

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS samples (
        at {real} NOT NULL,
        broker TEXT NOT NULL,
        vhost TEXT NOT NULL,
        queue TEXT NOT NULL,
        ready BIGINT NOT NULL,
        unacked BIGINT NOT NULL,
        acks BIGINT,
        dead_letters BIGINT,
        redeliveries BIGINT
    )""",
    "CREATE INDEX IF NOT EXISTS samples_by_queue ON samples (broker, vhost, queue, at)",
    "CREATE INDEX IF NOT EXISTS samples_by_time ON samples (broker, vhost, at)",
    "CREATE INDEX IF NOT EXISTS samples_for_pruning ON samples (at)",
    "CREATE TABLE IF NOT EXISTS full_polls (at {real} NOT NULL, broker TEXT NOT NULL, "
    "vhost TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS full_polls_by_time ON full_polls (broker, vhost, at)",
)


def _tables(db: Transaction) -> None:
    """The tables; a file written before the redelivery count was kept gets its column (its old
    samples have none)."""
    columns = db.columns("samples")
    for statement in SCHEMA:
        db.execute(statement)
    if columns and "redeliveries" not in columns:
        db.execute("ALTER TABLE samples ADD COLUMN redeliveries INTEGER")


HISTORY = Store("history", [_tables])
COLUMNS = "at, broker, vhost, queue, ready, unacked, acks, dead_letters, redeliveries"
# A full poll at least this often: the charts' gaps and the trends' spans allow for it.
HEARTBEAT_SECONDS = 60


@dataclass(frozen=True)
class Sample:
    at: float
    ready: int
    unacked: int
    acks: int | None
    dead_letters: int | None
    redeliveries: int | None = None


Counts = tuple[int, int, int | None, int | None, int | None]


class Run(NamedTuple):
    """A queue's counts as the polls last saw them, and when they were last written. Every run
    kept was seen by the vhost's last poll (one that does not see a queue ends its run), so
    when each was last seen is that poll's moment, kept once per vhost: a poll of 100,000
    queues whose counts stand still then builds nothing per queue."""

    counts: Counts
    written_at: float
    # The poll's row the counts were last seen in: a poll that reuses it (reads/overview.py
    # `LastRows`) has the same counts, and they need not be compared.
    row: TenantRow


class History:
    """Samples of one broker (`broker`, its management URL): one file may serve several."""

    def __init__(self, location: Path | str, retention_seconds: float, broker: str):
        self.database = Database(location, HISTORY)
        self.broker = broker
        self.retention_seconds = retention_seconds
        self._lock = threading.Lock()
        self._pruned_at = 0.0
        # vhost -> queue -> its run, as this process's polls saw it.
        self._runs: dict[str, dict[str, Run]] = {}
        # vhost -> the moment of this process's last poll of it, which saw every run kept.
        self._seen_at: dict[str, float] = {}
        # vhost -> when this process last wrote a full poll of it.
        self._full_at: dict[str, float] = {}
        # Made or migrated now: a store that cannot be opened is said at the start.
        with self.database.transaction():
            pass

    def record(self, overview: Overview, at: float | None = None) -> None:
        """The tenant queues' counts (a queue under two tenant ids is one), where they changed
        since the last poll, or all of them in the first poll of a minute."""
        moment = time.time() if at is None else at
        vhost = overview.vhost
        runs = self._runs.setdefault(vhost, {})
        last_full, last_seen = self._full_at.get(vhost), self._seen_at.get(vhost)
        full = last_full is None or moment // HEARTBEAT_SECONDS != last_full // HEARTBEAT_SECONDS
        seen: set[str] = set()
        rows: list[tuple] = []
        for row in overview.rows:
            # A queue the broker has not counted yet reads 0: no sample, rather than a false one.
            # Nor without its ack count (statistics not read): it would break the runs of equal
            # counts that prove a silence. A queue under two tenant ids is recorded once.
            if not row.counted or row.acks is None or row.queue in seen:
                continue
            queue = row.queue
            seen.add(queue)
            run = runs.get(queue)
            # The row the run was last seen in, reused by the poll: the same counts.
            if run is not None and run.row is row and not full:
                continue
            counts = _counts_of(row)
            if run is not None and run.counts == counts and not full:
                runs[queue] = run._replace(row=row)
                continue
            if run is not None and run.counts != counts:
                rows.extend(_unwritten_end(queue, run, last_seen))
            rows.append((moment, queue, counts, row))
        ended = runs.keys() - seen
        for queue in ended:
            rows.extend(_unwritten_end(queue, runs[queue], last_seen))
        with self._lock, self.database.transaction() as db:
            db.executemany(
                f"INSERT INTO samples ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(at, self.broker, vhost, queue, *counts) for at, queue, counts, _ in rows],
            )
            if full:
                db.execute(
                    "INSERT INTO full_polls (at, broker, vhost) VALUES (?, ?, ?)",
                    (moment, self.broker, vhost),
                )
            if moment - self._pruned_at > 60:
                for table in ("samples", "full_polls"):
                    db.execute(
                        f"DELETE FROM {table} WHERE at < ?", (moment - self.retention_seconds,)
                    )
                self._pruned_at = moment
        # Only once written: a poll whose write failed leaves the runs as the last one saw them.
        for queue in ended:
            del runs[queue]
        runs.update(
            (queue, Run(counts, moment, row)) for at, queue, counts, row in rows if at == moment
        )
        self._seen_at[vhost] = moment
        if full:
            self._full_at[vhost] = moment

    def latest(self, vhost: str, queue: str) -> Sample | None:
        """The last poll that saw `queue`, written or not (a run of equal counts is written
        once a minute)."""
        run = self._runs.get(vhost, {}).get(queue)
        return None if run is None else Sample(self._seen_at[vhost], *run.counts)

    def series(self, vhost: str, queue: str, since: float) -> list[Sample]:
        """Samples of one queue from `since` on, oldest first."""
        with self.database.transaction() as db:
            rows = db.execute(
                "SELECT at, ready, unacked, acks, dead_letters, redeliveries FROM samples "
                "WHERE broker = ? AND vhost = ? AND queue = ? AND at >= ? ORDER BY at",
                (self.broker, vhost, queue, since),
            ).fetchall()
        return [Sample(*row) for row in rows]

    def recent(self, vhost: str, since: float) -> dict[str, list[Sample]]:
        """Samples of every queue of `vhost` from `since` on, per queue, oldest first."""
        with self.database.transaction() as db:
            rows = db.execute(
                "SELECT queue, at, ready, unacked, acks, dead_letters, redeliveries FROM samples "
                "WHERE broker = ? AND vhost = ? AND at >= ? ORDER BY at",
                (self.broker, vhost, since),
            ).fetchall()
        by_queue: dict[str, list[Sample]] = {}
        for queue, *values in rows:
            by_queue.setdefault(queue, []).append(Sample(*values))
        return by_queue

    def held_silences(
        self, vhost: str, acks: dict[str, int], since: float
    ) -> dict[str, tuple[float, bool] | None]:
        """For each queue of `acks` (name -> today's ack count) with samples from `since` on:
        since when they show it holding messages at that count (the first sample after the
        last that differs) and whether that is the oldest of them (the silence may be longer);
        None when the latest differs."""
        return self._unbroken(
            vhost, acks, since, "s.unacked = 0 OR s.acks IS DISTINCT FROM asked.value"
        )

    def backlogs(
        self, vhost: str, queues: list[str], since: float
    ) -> dict[str, tuple[float, bool]]:
        """For each of `queues` with samples from `since` on: since when they show it with
        ready messages (the first sample after the last with none) and whether that is the
        oldest of them (the backlog may be older); absent when the latest has none."""
        found = self._unbroken(vhost, dict.fromkeys(queues), since, "s.ready = 0")
        return {queue: value for queue, value in found.items() if value is not None}

    def _unbroken(
        self, vhost: str, values: dict[str, int | None], since: float, broken: str
    ) -> dict[str, tuple[float, bool] | None]:
        """For each queue of `values`: since when its samples from `since` on have not met the
        SQL condition `broken` (on sample `s` and `asked.value`), as `held_silences` says.
        Worked out in the database, one queue's samples at a time, so a poll holds no window of
        samples in memory, however many queues and polls."""
        with self.database.transaction() as db:
            db.execute("CREATE TEMP TABLE asked (queue TEXT PRIMARY KEY, value BIGINT)")
            db.executemany("INSERT INTO asked VALUES (?, ?)", values.items())
            where = (self.broker, vhost, since)
            rows = db.execute(
                f"""WITH differed AS (
                    SELECT asked.queue AS queue, (
                        SELECT s.at FROM samples s WHERE s.broker = ?
                        AND s.vhost = ? AND s.queue = asked.queue AND s.at >= ?
                        AND ({broken}) ORDER BY s.at DESC LIMIT 1
                    ) AS at FROM asked
                )
                SELECT queue, at, (
                    SELECT MIN(at) FROM samples s WHERE s.broker = ? AND s.vhost = ?
                    AND s.queue = differed.queue AND s.at >= ?
                    AND s.at > COALESCE(differed.at, -1e300)
                ) FROM differed""",
                (*where, *where),
            ).fetchall()
        found: dict[str, tuple[float, bool] | None] = {}
        for queue, differed, first_after in rows:
            if first_after is not None:
                found[queue] = (first_after, differed is None)
            elif differed is not None:
                found[queue] = None
        return found

    def first_counting(
        self, vhost: str, queues: list[str], since: float, count: str
    ) -> dict[str, Sample]:
        """For each of `queues`, its first sample from `since` on that holds a `count`
        (`dead_letters` or `redeliveries`: a queue may have gained one within the window; `ready`:
        its first sample)."""
        if count not in ("dead_letters", "redeliveries", "ready"):
            raise ValueError(count)
        with self.database.transaction() as db:
            db.execute("CREATE TEMP TABLE asked (queue TEXT PRIMARY KEY)")
            db.executemany("INSERT INTO asked VALUES (?)", [(queue,) for queue in queues])
            where = (self.broker, vhost)
            rows = db.execute(
                f"""SELECT asked.queue, first.at, first.ready, first.unacked, first.acks,
                    first.dead_letters, first.redeliveries FROM asked
                JOIN samples first ON first.broker = ? AND first.vhost = ?
                AND first.queue = asked.queue AND first.{count} IS NOT NULL AND first.at = (
                    SELECT MIN(s.at) FROM samples s WHERE s.broker = ? AND s.vhost = ?
                    AND s.queue = asked.queue AND s.at >= ? AND s.{count} IS NOT NULL
                )""",
                (*where, *where, since),
            ).fetchall()
        return {queue: Sample(*values) for queue, *values in rows}

    def ready_trends(
        self, vhost: str, since: float, until: float, buckets: int
    ) -> dict[str, list[int | None]]:
        """Every queue of `vhost` from `since` to `until` cut into `buckets` equal spans: its
        ready count at each span's last full poll (None where that poll did not see it; a span
        is longer than HEARTBEAT_SECONDS)."""
        width = (until - since) / buckets
        with self.database.transaction() as db:
            # A full poll records every queue at one moment: the spans' last ones are a few
            # index look-ups, and only their rows are read, however many polls the hour holds.
            lasts = [
                db.execute(
                    "SELECT MAX(at) FROM full_polls WHERE broker = ? AND vhost = ? AND at >= ? "
                    "AND at < ?",
                    (self.broker, vhost, since + span * width, since + (span + 1) * width),
                ).fetchone()[0]
                for span in range(buckets)
            ]
            span_of = {at: span for span, at in enumerate(lasts) if at is not None}
            if not span_of:
                return {}
            rows = db.execute(
                "SELECT queue, at, ready FROM samples WHERE broker = ? AND vhost = ? AND at IN "
                f"({', '.join('?' * len(span_of))})",
                (self.broker, vhost, *span_of),
            ).fetchall()
        trends: dict[str, list[int | None]] = {}
        for queue, at, ready in rows:
            trends.setdefault(queue, [None] * buckets)[span_of[at]] = ready
        return trends


def _unwritten_end(queue: str, run: Run, seen_at: float) -> list[tuple]:
    """The last poll of a run that ended (`seen_at`: the poll before this one), where it was
    not written already."""
    return [(seen_at, queue, run.counts, run.row)] if seen_at > run.written_at else []


def _counts_of(row: TenantRow) -> Counts:
    return (row.ready, row.unacked, row.acks, row.dead_letters, row.redeliveries)


def open_history(settings: Settings) -> History | None:
    """The history store, or None (logged) when its file cannot be opened."""
    try:
        return History(
            settings.database(settings.history_db),
            settings.history_hours * 3600,
            settings.management_url,
        )
    except DatabaseError as exc:
        log.warning("no history: it cannot be opened: %s", exc)
        return None


@dataclass(frozen=True)
class Point:
    """A point of a chart; None counts mark a gap, so the line breaks instead of lying."""

    at: float
    ready: int | None
    unacked: int | None
    # Redeliveries since the chart's first sample that counts them (None: not known here).
    redelivered: int | None = None


def spaced(samples: list[tuple[Sample, float]]) -> list[Point]:
    """Samples of several sources, oldest first, each with its source's `max_gap`, as points:
    a gap point wherever two neighbours lie further apart than the larger of their two."""
    points: list[Point] = []
    last_gap = 0.0
    redelivered = _Increase()
    for sample, max_gap in samples:
        allowed = max(max_gap, last_gap)
        if points and sample.at - points[-1].at > allowed:
            points.append(Point(points[-1].at + allowed / 2, None, None))
        points.append(
            Point(sample.at, sample.ready, sample.unacked, redelivered.add(sample.redeliveries))
        )
        last_gap = max_gap
    return points


class _Increase:
    """A cumulative count's increase since its first value: a count that went down was reset
    (a restarted broker, a queue declared again) and counts on from 0."""

    def __init__(self):
        self.total = 0
        self.last: int | None = None

    def add(self, count: int | None) -> int | None:
        if count is None:
            return None
        if self.last is not None:
            self.total += count - self.last if count >= self.last else count
        self.last = count
        return self.total
