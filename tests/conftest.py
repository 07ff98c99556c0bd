"""One disposable RabbitMQ node for the whole run; each test works under its own unique names."""

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pika
import pytest
import requests
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.broker.session import Session
from dashboard.broker.versions import BrokerVersion
from dashboard.local.postgresql import LocalPostgres
from dashboard.local.rabbitmq import LocalBroker
from dashboard.settings import Settings, load_settings
from tests.support.helpers import STATISTICS_UP_TO, Holder


@pytest.fixture(scope="session")
def broker(tmp_path_factory) -> Iterator[LocalBroker]:
    node = LocalBroker.create(tmp_path_factory.mktemp("broker"))
    started = time.monotonic()
    node.start()
    print(f"\nbroker {node.node} started in {time.monotonic() - started:.1f} s")
    yield node
    node.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """One disposable PostgreSQL cluster for the run (started only by tests that ask for it);
    each test makes its own database in it."""
    server = LocalPostgres.create()
    started = time.monotonic()
    server.start()
    print(f"\nPostgreSQL on port {server.port} started in {time.monotonic() - started:.1f} s")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> Path | str:
    """Where a test's audit log and history live, once on each kind of database: a SQLite file,
    or a new database of its own on the run's PostgreSQL."""
    if request.param == "sqlite":
        return tmp_path / "warren.sqlite"
    return request.getfixturevalue("postgres").create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def broker_version(broker: LocalBroker) -> BrokerVersion:
    """The version of the test node: 3.10 from Debian 12, or 4.0 under WARREN_RABBITMQ_ROOT."""
    with Session(load_settings(management_url=broker.management_url)) as session:
        return session.client.broker_version()


@pytest.fixture(scope="session")
def second_broker(tmp_path_factory) -> Iterator[LocalBroker]:
    """Another node, for the tests that stop a broker or need one that is not `broker`."""
    with LocalBroker.create(tmp_path_factory.mktemp("second")) as node:
        yield node


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
            "metrics_url": broker.metrics_url,
            "refresh_seconds": 1,
            "request_timeout": 5,
            # The test's own files, never the home directory's.
            "history_db": tmp_path / "history.sqlite",
            "audit_db": tmp_path / "audit.sqlite",
            "statistics_up_to": STATISTICS_UP_TO,
        }
        return load_settings(**(values | overrides))

    return make


@pytest.fixture
def session_for(settings_for) -> Iterator[Callable[..., Session]]:
    """Sessions on the test broker, as the CLI and the console build them (`settings_for`'s
    overrides); all closed after the test."""
    made: list[Session] = []

    def make(**overrides) -> Session:
        made.append(Session(settings_for(**overrides)))
        return made[-1]

    yield make
    for session in made:
        session.close()


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


@pytest.fixture
def broker_user(broker: LocalBroker, unique) -> Iterator[Callable[..., tuple[str, str]]]:
    """Creates broker users: `broker_user("monitoring")` -> (name, password), with the given
    tags and permissions (configure, write, read) on vhost `/`, or none; deleted after the test."""
    made: list[str] = []
    admin = ("guest", "guest")

    def make(tags: str, permissions: tuple[str, str, str] | None = (".*", ".*", ".*")):
        name, password = unique(f"user{len(made)}-{tags or 'none'}"), uuid.uuid4().hex
        base = f"{broker.management_url}/api"
        user = requests.put(
            f"{base}/users/{name}", json={"password": password, "tags": tags}, auth=admin
        )
        user.raise_for_status()
        made.append(name)
        if permissions is not None:
            configure, write, read = permissions
            requests.put(
                f"{base}/permissions/%2F/{name}",
                json={"configure": configure, "write": write, "read": read},
                auth=admin,
            ).raise_for_status()
        return name, password

    yield make
    for name in made:
        requests.delete(f"{broker.management_url}/api/users/{name}", auth=admin)


APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


@pytest.fixture
def console(settings_for, monkeypatch):
    """Returns a function that points the app at the broker (env overrides) and runs it."""
    st.cache_resource.clear()

    def run(
        query: dict | None = None, page: str | None = None, user: dict | None = None, **env: str
    ) -> AppTest:
        base = settings_for()
        values = {
            "WARREN_MANAGEMENT_URL": base.management_url,
            "WARREN_AMQP_URL": base.amqp_url.get_secret_value(),
            "WARREN_METRICS_URL": base.metrics_url,
            "WARREN_REFRESH_SECONDS": "1",
            "WARREN_HISTORY_DB": str(base.history_db),
            "WARREN_AUDIT_DB": str(base.audit_db),
            "WARREN_STATISTICS_UP_TO": str(STATISTICS_UP_TO),
        } | env
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        app = AppTest.from_file(APP, default_timeout=30)
        app.query_params.update(query or {})
        if user is not None:
            # What the identity provider's ID token said (WARREN_AUTH=oidc): `st.user`.
            app.user = {"is_logged_in": True} | user
        if page:
            app.switch_page(page)
        return app.run()

    yield run
    st.cache_resource.clear()
