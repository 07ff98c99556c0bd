"""The shared poll: one fetch per interval for any number of viewers, last good data kept."""

import threading
import time

import pytest

from dashboard.errors import BrokerUnreachable
from dashboard.poll import SharedPoll, overview_poll
from tests.amqp_helpers import tenant_with_messages
from tests.conftest import wait_until
from tests.tcpproxy import TcpProxy


def test_twenty_viewers_cause_one_fetch_per_interval():
    fetches = []
    poll = SharedPoll(lambda: fetches.append(time.monotonic()) or len(fetches), interval=0.5)
    start = threading.Barrier(20)

    def viewer():
        start.wait()
        for _ in range(5):
            poll.get()

    threads = [threading.Thread(target=viewer) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fetches) == 1
    time.sleep(0.5)
    assert poll.get().data == 2
    assert poll.fetches == 2


@pytest.fixture
def proxy(broker):
    forwarder = TcpProxy(broker.management_port)
    yield forwarder
    forwarder.close()


def test_broker_outage_keeps_last_good_data_and_recovers(settings_for, channel, unique, proxy):
    exchange = unique("tenants")
    tenant_with_messages(channel, exchange, "acme", unique("acme"), 3)
    poll = overview_poll(
        settings_for(management_url=proxy.url, tenant_exchange=exchange, refresh_seconds=1)
    )
    good = wait_until(
        lambda: (snap := poll.get()).data and snap.data.totals.ready == 3 and snap,
        what="3 ready messages",
    )
    assert (good.stale, good.failing_since) == (False, None)

    proxy.cut()
    down = wait_until(lambda: (snap := poll.get()).stale and snap, what="the poll to fail")
    assert isinstance(down.error, BrokerUnreachable)
    assert down.data == good.data
    assert down.fetched_at == good.fetched_at
    assert down.failing_since > good.fetched_at

    time.sleep(1)
    still_down = wait_until(lambda: (snap := poll.get()) is not down and snap, what="a retry")
    assert still_down.failing_since == down.failing_since

    proxy.restore()
    back = wait_until(lambda: not (snap := poll.get()).stale and snap, what="recovery")
    assert back.failing_since is None
    assert back.fetched_at > down.failing_since
    assert back.data.totals.ready == 3
