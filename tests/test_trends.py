"""The overview's last hour: each queue's ready per span from a real history file, the backlogs
growing fastest (and only those that really grew), and both on the overview page."""

import time
from dataclasses import replace
from datetime import UTC, datetime

from dashboard.reads.history import HEARTBEAT_SECONDS, History
from dashboard.reads.models import Overview, TenantRow, Totals
from dashboard.reads.overview import fetch_overview
from dashboard.reads.trends import (
    MIN_GROWTH,
    MIN_SPANS,
    SPANS,
    WINDOW_SECONDS,
    QueueTrend,
    Trends,
    fetch_trends,
)
from tests.support.helpers import tenant_with_messages, wait_until

SPAN = WINDOW_SECONDS / SPANS


def record(history: History, at: float, ready: dict[str, int], vhost: str = "/") -> None:
    """One poll at `at` of queues with these ready counts."""
    history.record(_overview(_rows(ready, vhost), vhost), at)


def _rows(ready: dict[str, int], vhost: str = "/") -> list[TenantRow]:
    return [
        TenantRow(tenant=queue, vhost=vhost, queue=queue, ready=count, unacked=0, total=count,
                  consumers=0, queue_type="classic")
        for queue, count in ready.items()
    ]  # fmt: skip


def _overview(rows: list[TenantRow], vhost: str = "/") -> Overview:
    totals = Totals(tenants=len(rows), queues=len(rows), ready=0, unacked=0, total=0, consumers=0)
    return Overview(
        vhost=vhost, exchange="x", rows=rows, totals=totals, fetched_at=datetime.now(UTC)
    )


def test_ready_per_span_is_its_last_full_poll(tmp_path):
    """The first poll of each minute writes every queue; the others, what changed."""
    history = History(tmp_path / "history.sqlite", 7200, "http://broker")
    other_broker = History(tmp_path / "history.sqlite", 7200, "http://elsewhere")
    since = 60 * 16_667.0
    record(history, since - 10, {"a": 99})  # before the window
    record(history, since + 1, {"a": 1, "gone": 7})  # a new minute: a full poll
    record(history, since + 2, {"a": 2, "b": 8})
    record(history, since + 61, {"a": 3, "b": 8})  # the first span's last full poll
    record(history, since + 2 * SPAN + 5, {"a": 5})
    record(history, since + 2 * SPAN + 5, {"c": 3}, vhost="other")
    record(other_broker, since + SPAN + 5, {"a": 42})

    trends = history.ready_trends("/", since, since + WINDOW_SECONDS, SPANS)

    # "gone" was deleted before the span's last full poll: not in it.
    assert trends == {
        "a": [3, None, 5] + [None] * (SPANS - 3),
        "b": [8] + [None] * (SPANS - 1),
    }
    assert [s.ready for s in history.series("/", "a", since)] == [1, 2, 3, 5]


def test_a_queue_whose_count_stands_still_is_in_every_span(tmp_path):
    """Its count is written once a minute, not on every poll: each span still has it."""
    history = History(tmp_path / "history.sqlite", 7200, "http://broker")
    since = 1_000_000.0
    for poll in range(int(WINDOW_SECONDS / 5)):
        record(history, since + 5 * poll, {"still": 4})

    assert history.ready_trends("/", since, since + WINDOW_SECONDS, SPANS) == {"still": [4] * SPANS}
    assert len(history.series("/", "still", 0)) <= WINDOW_SECONDS / HEARTBEAT_SECONDS + 1


def test_growing_fastest_is_at_most_five_that_really_grew():
    def trend(first: int, last: int, spans: int = SPANS) -> QueueTrend:
        return QueueTrend(ready=[None] * (SPANS - spans) + [first] * (spans - 1) + [last])

    by_queue = {f"grows-{n}": trend(0, MIN_GROWTH * (n + 1)) for n in range(7)}
    by_queue |= {
        "barely": trend(10, 10 + MIN_GROWTH - 1),
        "seen-briefly": trend(0, 10 * MIN_GROWTH, spans=MIN_SPANS - 1),
        "shrinks": trend(5000, 0),
    }

    trends = Trends(by_queue=by_queue)

    assert trends.growing_fastest == [f"grows-{n}" for n in (6, 5, 4, 3, 2)]
    assert by_queue["seen-briefly"].growth == 10 * MIN_GROWTH
    assert by_queue["grows-0"].growth_seconds == (SPANS - 1) * SPAN


def test_trends_from_a_history_file(tmp_path):
    history = History(tmp_path / "history.sqlite", 7200, "http://broker")
    now = time.time()
    for span in range(SPANS):
        at = now - WINDOW_SECONDS + (span + 0.5) * SPAN
        record(history, at, {"busy": 50 * span, "calm": 4})

    trends = fetch_trends(history, "/", now)

    assert trends.by_queue["busy"].ready == [50 * span for span in range(SPANS)]
    assert trends.by_queue["busy"].growth == 50 * (SPANS - 1)
    assert trends.by_queue["calm"].growth == 0
    assert trends.growing_fastest == ["busy"]


def test_the_overview_draws_each_tenants_hour_and_names_the_fastest_growing(
    session_for, settings_for, channel, unique, console
):
    exchange = unique("tenants")
    busy = tenant_with_messages(channel, exchange, "busy", unique("busy"), 1500)
    calm = tenant_with_messages(channel, exchange, "calm", unique("calm"), 4)
    brief = tenant_with_messages(channel, exchange, "brief", unique("brief"), 900)
    session = session_for(tenant_exchange=exchange)
    wait_until(lambda: fetch_overview(session).totals.ready == 2404, what="2,404 ready")
    settings = settings_for()
    history = History(settings.history_db, 24 * 3600, settings.management_url)
    now = time.time()
    for span in range(SPANS - 1):
        seen = {busy: 50 * span, calm: 4} | ({brief: 0} if span > SPANS - MIN_SPANS else {})
        record(history, now - WINDOW_SECONDS + (span + 0.5) * SPAN, seen)

    app = console(WARREN_TENANT_EXCHANGE=exchange)

    assert not app.exception
    table = app.dataframe[0].value.set_index("tenant")
    # The last span is the console's own poll.
    assert list(table.loc["busy", "trend"]) == [50 * span for span in range(SPANS - 1)] + [1500]
    assert table.loc[["busy", "calm", "brief"], "growth"].tolist() == [1500, 0, 900]
    growing = [link.label for link in app.get("page_link") if "grew by" in link.label]
    # "brief" grew as fast, but is seen in too few spans (the poll included) to be sure.
    assert growing == ["busy: ready grew by 1,500 in 58 min 0 s (now 1,500)."]
    assert "Growing fastest" in [header.value for header in app.subheader]


def test_a_queue_the_broker_has_not_counted_yet_leaves_no_sample(tmp_path):
    """Until its first statistics a new queue reads 0 ready: a 0 nobody saw is not recorded."""
    history = History(tmp_path / "history.sqlite", 7200, "http://broker")
    record(history, 100.0, {"counted": 3, "fresh": 0})
    uncounted = [replace(row, counted=False) for row in _rows({"fresh": 0})]
    history.record(_overview(uncounted), 101.0)

    assert [s.at for s in history.series("/", "fresh", 0)] == [100.0]
    assert [s.at for s in history.series("/", "counted", 0)] == [100.0]
