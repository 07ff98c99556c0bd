"""Where the tenant chart's counts come from: the broker's own samples for 10 minutes, else the
local history (Prometheus: tests/test_prometheus.py); a window no source can give is a sentence."""

from datetime import UTC, datetime

import pytest

from dashboard.reads.counts_over_time import CountsOverTime, HistoryUnavailable
from dashboard.reads.history import History
from dashboard.reads.queue_detail import CountSample


def test_ten_minutes_are_the_brokers_own_samples(settings_for):
    at = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    series = CountsOverTime(settings_for(), None).series(
        "/", "q", 600, [CountSample(at=at, ready=5, unacked=2)]
    )
    assert [(point.at, point.ready, point.unacked) for point in series.points] == [
        (at.timestamp(), 5, 2)
    ]
    assert series.source == "the broker's own samples"


def test_an_hour_without_a_history_file_is_a_sentence(settings_for):
    with pytest.raises(HistoryUnavailable, match="No local history: the history file cannot"):
        CountsOverTime(settings_for(), None).series("/", "q", 3600, [])


def test_an_hour_from_a_history_file_that_broke_names_the_file(settings_for, tmp_path):
    path = tmp_path / "history.sqlite"
    history = History(path, 3600, "http://broker")
    path.write_bytes(b"not a database" * 100)
    counts = CountsOverTime(settings_for(refresh_seconds=5), history)
    with pytest.raises(HistoryUnavailable, match=f"The local history at {path} cannot be read"):
        counts.series("/", "q", 3600, [])


def test_an_hour_from_the_local_history_says_its_sampling(settings_for, tmp_path):
    history = History(tmp_path / "history.sqlite", 3600, "http://broker")
    series = CountsOverTime(settings_for(refresh_seconds=5), history).series("/", "q", 3600, [])
    assert (series.points, series.source) == ([], "Warren's history, one sample per poll (5 s)")
