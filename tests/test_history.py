"""The history's rules worked out in SQLite give what the same rules give over the samples in
Python (reads/silence.py's one definition), for any run of polls (hypothesis)."""

import sqlite3
import tempfile
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.reads.history import HEARTBEAT_SECONDS, History, Sample
from dashboard.reads.models import Overview, TenantRow, Totals
from dashboard.reads.silence import silence_in

# Polls of one queue: (unacked, acks, dead letters or None), one per 10 s.
POLLS = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 2), st.none() | st.integers(0, 3)),
    min_size=1,
    max_size=12,
)


def overview(unacked: int, acks: int, dead: int | None) -> Overview:
    row = TenantRow(
        tenant="t", vhost="/", queue="q", ready=0, unacked=unacked, total=unacked,
        consumers=1, queue_type="classic", acks=acks, dead_letters=dead,
    )  # fmt: skip
    totals = Totals(tenants=1, queues=1, ready=0, unacked=unacked, total=unacked, consumers=1)
    return Overview(
        vhost="/", exchange="x", rows=[row], totals=totals, fetched_at=datetime.now(UTC)
    )


@settings(max_examples=60, deadline=None)
@given(polls=POLLS, skipped=st.integers(0, 4))
def test_held_silences_and_first_dead_letters_match_the_rules_over_the_samples(polls, skipped):
    times = [1000.0 + 10 * number for number in range(len(polls))]
    with tempfile.TemporaryDirectory() as scratch:
        history = History(Path(scratch) / "h.sqlite", 86400, "http://broker")
        for at, poll in zip(times, polls, strict=True):
            history.record(overview(*poll), at=at)
        since = 1000.0 + 10 * skipped
        acks = polls[-1][1]
        samples = history.series("/", "q", 0)
        found = history.held_silences("/", {"q": acks}, since)
        first = history.first_counting("/", ["q"], since, "dead_letters")

    # Every change is written, and the last poll before it: runs of equal counts are whole.
    changed = [n for n in range(1, len(polls)) if polls[n] != polls[n - 1]]
    written = {sample.at for sample in samples}
    assert {times[0]} | {times[n] for n in changed} | {times[n - 1] for n in changed} <= written
    assert written <= set(times)
    window = [sample for sample in samples if sample.at >= since]
    expected = silence_in([(s.at, s.unacked > 0 and s.acks == acks) for s in window])
    if not window:
        assert found == {}
    else:
        assert found == {"q": (expected.since, expected.at_least) if expected else None}
    counted = [(s.at, s.dead_letters) for s in window if s.dead_letters is not None]
    assert {q: (sample.at, sample.dead_letters) for q, sample in first.items()} == (
        {"q": counted[0]} if counted else {}
    )


def test_counts_that_stand_still_are_written_once_a_minute_and_the_last_poll_is_known(tmp_path):
    history = History(tmp_path / "h.sqlite", 86400, "http://broker")
    for second in range(0, 300, 5):
        history.record(overview(2, 7, None), at=1000.0 + second)
    history.record(overview(0, 9, None), at=1300.0)

    written = history.series("/", "q", 0)
    assert written[0].at == 1000.0
    assert [(s.at, s.unacked, s.acks) for s in written][-2:] == [(1295.0, 2, 7), (1300.0, 0, 9)]
    gaps = [later.at - earlier.at for earlier, later in pairwise(written)]
    assert max(gaps) <= HEARTBEAT_SECONDS and len(written) <= 300 / HEARTBEAT_SECONDS + 3
    assert history.latest("/", "q") == Sample(1300.0, 0, 0, 9, None, 0)
    history.record(overview(0, 9, None), at=1305.0)
    assert history.latest("/", "q").at == 1305.0 and history.series("/", "q", 1301) == []


def test_a_history_file_from_before_redeliveries_opens_and_keeps_its_samples(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE samples (at REAL NOT NULL, broker TEXT NOT NULL, vhost TEXT NOT NULL, "
            "queue TEXT NOT NULL, ready INTEGER NOT NULL, unacked INTEGER NOT NULL, acks INTEGER, "
            "dead_letters INTEGER)"
        )
        db.execute("INSERT INTO samples VALUES (900, 'http://broker', '/', 'q', 1, 1, 0, 2)")

    history = History(path, 86400, "http://broker")
    history.record(overview(1, 0, 3), at=1000.0)

    assert [(s.at, s.dead_letters, s.redeliveries) for s in history.series("/", "q", 0)] == [
        (900.0, 2, None),
        (1000.0, 3, 0),
    ]
    assert history.first_counting("/", ["q"], 0, "redeliveries")["q"].at == 1000.0
