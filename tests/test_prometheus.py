"""Counts over time from a real Prometheus scraping the real broker."""

import itertools
import time

import pytest

from dashboard.reads.prometheus_history import PrometheusHistory, label_value
from tests.support.helpers import ready_and_consumers, tenant_with_messages, wait_until
from tests.support.promserver import PrometheusServer


@pytest.fixture(scope="module")
def prometheus(broker, tmp_path_factory):
    server = PrometheusServer(broker, tmp_path_factory.mktemp("prometheus"))
    yield server
    server.stop()


def test_label_values_are_escaped():
    assert label_value('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


def test_series_matches_amqp(prometheus, channel, unique, pod):
    # Not a quote or a backslash: RabbitMQ 3.10's plugin does not escape them in label values,
    # and one such queue makes Prometheus reject the whole scrape.
    queue = tenant_with_messages(channel, unique("tenants"), "acme", unique("q ü #/% name"), 5)
    assert pod("pod-prom").hold(queue, prefetch=2, expect=2) == 2
    assert ready_and_consumers(channel, queue) == (3, 1)
    history = PrometheusHistory(prometheus.url, timeout=5)

    def latest():
        samples = history.series("/", queue, time.time() - 120, step=1)
        return samples and (samples[-1].ready, samples[-1].unacked) == (3, 2) and samples

    samples = wait_until(latest, timeout=60, what="Prometheus to scrape 3 ready, 2 unacked")
    assert all(later.at > earlier.at for earlier, later in itertools.pairwise(samples))


def test_unknown_queue_has_no_samples(prometheus, unique):
    history = PrometheusHistory(prometheus.url, timeout=5)
    assert history.series("/", unique("nowhere"), time.time() - 60, step=1) == []
