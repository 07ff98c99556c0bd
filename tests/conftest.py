"""One disposable RabbitMQ node for the whole run; each test works under its own unique names."""

import os
import time
import uuid
from collections.abc import Callable, Iterator

import pika
import pytest

from dashboard.localbroker import LocalBroker
from dashboard.settings import Settings, load_settings
from tests.amqp_helpers import Holder


@pytest.fixture(scope="session")
def broker(tmp_path_factory) -> Iterator[LocalBroker]:
    node = LocalBroker.create(tmp_path_factory.mktemp("broker"))
    started = time.monotonic()
    node.start()
    print(f"\nbroker {node.node} started in {time.monotonic() - started:.1f} s")
    yield node
    node.stop()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names no other test uses: `unique("tenants")` -> `tenants-1f2e3d4c`."""
    token = uuid.uuid4().hex[:8]
    return lambda prefix: f"{prefix}-{token}"


@pytest.fixture
def settings_for(broker: LocalBroker, monkeypatch, tmp_path) -> Callable[..., Settings]:
    """Settings pointing at the test broker; the environment is cleared of WARREN_ values."""
    for name in list(os.environ):
        if name.startswith("WARREN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(broker.base_dir)  # no stray .env from the developer's checkout

    def make(**overrides) -> Settings:
        values = {
            "management_url": broker.management_url,
            "amqp_url": broker.amqp_url,
            "refresh_seconds": 1,
            "request_timeout": 5,
            "history_db": tmp_path / "history.sqlite",
        }
        return load_settings(**(values | overrides))

    return make


@pytest.fixture
def channel(broker: LocalBroker) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    """A confirming AMQP channel for setting up a test's queues and messages."""
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    chan = connection.channel()
    chan.confirm_delivery()
    yield chan
    if connection.is_open:
        connection.close()


@pytest.fixture
def pod(broker: LocalBroker) -> Iterator[Callable[..., Holder]]:
    """Opens consumer connections ("pods") that hold messages; all closed after the test."""
    opened: list[Holder] = []

    def open_pod(name: str, vhost: str = "/") -> Holder:
        opened.append(Holder(broker, name, vhost))
        return opened[-1]

    yield open_pod
    for holder in opened:
        holder.close()


def wait_until(condition: Callable[[], object], timeout: float = 30, what: str = "condition"):
    """Poll `condition` until it returns something truthy; fail the test after `timeout` s.

    The management API's stats lag AMQP by a collection interval: tests wait for the exact
    numbers AMQP reported rather than sleeping a guessed time.
    """
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
