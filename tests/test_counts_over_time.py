"""Where the tenant chart's counts come from: Warren's history where it has samples, the
broker's own samples (without the zeros it pads its window with) where it has none in the last
10 minutes, Prometheus for long windows (tests/test_prometheus.py); a window no source can give
is a sentence."""

import time
from datetime import UTC, datetime

import pytest

from dashboard.reads.counts_over_time import (
    BROKER_SOURCE,
    CountsOverTime,
    HistoryUnavailable,
    Recorded,
    filled,
)
from dashboard.reads.history import History, Sample
from dashboard.reads.queue_detail import BROKER_STEP, CountSample, fetch_queue_detail
from tests.support.helpers import declare, fill, wait_until


def broker_sample(at: float, ready: int, unacked: int = 0) -> CountSample:
    return CountSample(at=datetime.fromtimestamp(at, UTC), ready=ready, unacked=unacked)


def clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S")


def test_ten_minutes_without_history_are_the_brokers_own_samples(settings_for):
    at = round(time.time()) - 30.0
    series = CountsOverTime(settings_for(), None).series("/", "q", 600, [broker_sample(at, 5, 2)])
    assert [(point.at, point.ready, point.unacked) for point in series.points] == [(at, 5, 2)]
    assert series.source == BROKER_SOURCE


def test_a_fresh_queue_draws_no_zero_before_its_first_count(broker, session_for, channel, unique):
    """The broker pads a queue's sample window with zeros back to 10 minutes, even for a queue
    declared long after its node started: none of them is drawn."""
    session = session_for()

    def up_for() -> float:
        # A node answers without its uptime until its first stats emission.
        answer = session.client.get_node(broker.node, ["uptime"])
        return answer.get("uptime", 0) / 1000 if isinstance(answer, dict) else 0

    # Taken with the uptime: a queue declared 30 s and more after its node started.
    started = time.time() - wait_until(
        lambda: (seconds := up_for()) > 3 * BROKER_STEP and seconds,
        timeout=60,
        what="the node up for 30 s",
    )
    queue = unique("fresh")
    declare(channel, queue)
    fill(channel, queue, 3)
    detail = wait_until(
        lambda: (
            (found := fetch_queue_detail(session, queue)).samples
            and found.samples[-1].ready == 3
            and found
        ),
        what="a sample with 3 ready",
    )
    raw = session.client.get_queue("/", queue, {"lengths_age": "600", "lengths_incr": "10"})
    padding = [
        item["timestamp"] / 1000
        for item in raw["messages_ready_details"]["samples"]
        if item["sample"] == 0
    ]
    # Zeros from after the node started, when the queue did not exist yet.
    assert [at for at in padding if started + BROKER_STEP < at < time.time() - BROKER_STEP]

    series = CountsOverTime(session.settings, None).series("/", queue, 600, detail.samples)

    assert series.points and {point.ready for point in series.points} == {3}
    assert series.source == BROKER_SOURCE


def test_the_history_is_preferred_and_the_broker_fills_its_gaps():
    now = float(round(time.time()))
    polls = [Sample(now - 100 + second, 5, 1, None, None) for second in range(11)]
    polls.append(Sample(now - 5, 6, 0, None, None))
    broker = [broker_sample(now - ago, 9) for ago in (120, 110, 100, 90, 80, 70)]

    series = filled(Recorded(polls, 3, "Warren's history, one sample per poll (1 s)"), broker)

    drawn = [(round(point.at - now), point.ready) for point in series.points]
    assert drawn == [
        (-120, 9),
        (-110, 9),
        *[(second - 100, 5) for second in range(11)],
        (-80, 9),
        (-70, 9),
        (-55, None),  # the gap until the next poll: nobody looked
        (-5, 6),
    ]
    assert series.source == (
        "Warren's history, one sample per poll (1 s); where it has none, "
        f"{BROKER_SOURCE}, for {clock(now - 120)}-{clock(now - 110)}, "
        f"{clock(now - 80)}-{clock(now - 70)} UTC"
    )


def test_a_lone_zero_of_the_broker_beside_warrens_samples_is_not_drawn():
    """A new queue's newest broker sample may still read 0 when Warren's poll already saw its
    7 messages: beside a sample of Warren's own, a zero the broker cannot tell from padding
    adds nothing."""
    now = float(round(time.time()))
    polls = [Sample(now - 2, 7, 0, None, None), Sample(now, 7, 0, None, None)]

    series = filled(Recorded(polls, 6, "history"), [broker_sample(now - 30, 0)])

    assert [(point.at - now, point.ready) for point in series.points] == [(-2, 7), (0, 7)]


def test_an_hour_without_a_history_file_is_a_sentence(settings_for):
    with pytest.raises(HistoryUnavailable, match="No local history: the history file cannot"):
        CountsOverTime(settings_for(), None).series("/", "q", 3600, [])


def test_an_hour_from_a_history_file_that_broke_names_the_file(settings_for, tmp_path):
    path = tmp_path / "history.sqlite"
    history = History(path, 3600, "http://broker")
    path.write_bytes(b"not a database" * 100)
    counts = CountsOverTime(settings_for(refresh_seconds=5), history)
    with pytest.raises(HistoryUnavailable, match=f"The history at {path} cannot be read"):
        counts.series("/", "q", 3600, [])


def test_an_hour_from_the_local_history_says_its_sampling(settings_for, tmp_path):
    history = History(tmp_path / "history.sqlite", 3600, "http://broker")
    series = CountsOverTime(settings_for(refresh_seconds=5), history).series("/", "q", 3600, [])
    assert (series.points, series.source) == (
        [],
        "Warren's history: every change seen by its polls (every 5 s), and once every 60 s while "
        "the counts stand still",
    )


def test_an_hour_of_empty_history_shows_the_brokers_last_minutes(settings_for, tmp_path):
    history = History(tmp_path / "history.sqlite", 3600, "http://broker")
    at = round(time.time()) - 20.0
    counts = CountsOverTime(settings_for(refresh_seconds=5), history)
    series = counts.series("/", "q", 3600, [broker_sample(at, 4)])
    assert [(point.at, point.ready) for point in series.points] == [(at, 4)]
    assert series.source == BROKER_SOURCE
