"""The topology kept between processes: reused while the counts name its queues and it is
young, listed again when a queue appears or goes, when Warren changes bindings, or when it is
too old; never another user's."""

import json
import time
from pathlib import Path

import pika
import pytest
import requests

from dashboard.actions.unbind import unbind
from dashboard.broker.management import api_path
from dashboard.reads.kept_topology import kept_topologies
from dashboard.reads.overview import OverviewReader, fetch_overview, list_topology
from tests.support.helpers import publish, run_cli, tenant_with_messages, wait_until

ADMIN = ("guest", "guest")


@pytest.fixture
def vhost(broker, unique):
    """A vhost of the test's own, where every queue is the test's: `(name, channel)`."""
    name = unique("kept")
    base = broker.management_url
    requests.put(base + api_path("vhosts", name), auth=ADMIN).raise_for_status()
    requests.put(
        base + api_path("permissions", name, "guest"),
        json={"configure": ".*", "write": ".*", "read": ".*"},
        auth=ADMIN,
    ).raise_for_status()
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url_for(name)))
    yield name, connection.channel()
    connection.close()
    requests.delete(base + api_path("vhosts", name), auth=ADMIN)


def tenants_of(overview) -> dict[str, int]:
    return {row.tenant: row.ready for row in overview.rows}


def at_scale(vhost_name: str, **overrides) -> dict:
    """Settings (`settings_for`'s overrides) that read a vhost as at scale: counts from the
    metrics endpoint over the topology, no statistics."""
    return {"vhost": vhost_name, "tenant_exchange": "tenants", "statistics_up_to": 0} | overrides


def scaled(settings_for, session_for, name: str, **overrides):
    """A session reading vhost `name` as at scale, and its kept topologies."""
    given = at_scale(name, **overrides)
    return session_for(**given), kept_topologies(settings_for(**given))


def stored_in(database: Path | str) -> dict:
    """The overrides that keep the history (and the topology) in `database`."""
    return {"history_db": database} if isinstance(database, Path) else {"database_url": database}


def one_shot_when(session, kept, expected: dict[str, int]):
    """The one-shot overview once its tenants' ready counts are `expected` (the metrics
    endpoint counts a new queue a moment after it is declared)."""

    def matches():
        overview = fetch_overview(session, None, kept)
        return overview if tenants_of(overview) == expected else None

    return wait_until(matches, what=f"the one-shot to show {expected}")


def test_a_kept_listing_is_reused_until_a_queue_appears(settings_for, session_for, vhost, database):
    name, channel = vhost
    first = tenant_with_messages(channel, "tenants", "acme", "q.acme", 2)
    tenant_with_messages(channel, "tenants", "globex", "q.globex", 1)
    session, kept = scaled(
        settings_for, session_for, name, topology_seconds=3600, **stored_in(database)
    )
    one_shot_when(session, kept, {"acme": 2, "globex": 1})

    # Another tool binds a queue that was there under a new id, and publishes to it.
    channel.queue_bind(first, "tenants", routing_key="initech")
    publish(channel, "tenants", "initech", 3)
    # The kept listing does not have the binding: it was not listed again. Its counts are new.
    assert one_shot_when(session, kept, {"acme": 5, "globex": 1}).counts_from == "metrics"
    assert tenants_of(fetch_overview(session, None)) == {"acme": 5, "globex": 1, "initech": 5}

    # A queue that appeared: the counts name it, and the listing is asked again (with the
    # binding made in place, too).
    tenant_with_messages(channel, "tenants", "umbrella", "q.umbrella", 4)
    one_shot_when(session, kept, {"acme": 5, "globex": 1, "initech": 5, "umbrella": 4})


def test_a_listing_older_than_the_topology_seconds_is_listed_again(
    settings_for, session_for, vhost
):
    name, channel = vhost
    queue = tenant_with_messages(channel, "tenants", "acme", "q.acme", 2)
    session, kept = scaled(settings_for, session_for, name, topology_seconds=1)
    one_shot_when(session, kept, {"acme": 2})
    channel.queue_bind(queue, "tenants", routing_key="initech")
    listed = time.monotonic()

    one_shot_when(session, kept, {"acme": 2, "initech": 2})

    assert time.monotonic() - listed >= 1


def test_warren_unbinding_drops_the_kept_listing(settings_for, session_for, vhost):
    name, channel = vhost
    tenant_with_messages(channel, "tenants", "acme", "q.acme", 2)
    tenant_with_messages(channel, "tenants", "globex", "q.globex", 1)
    session, kept = scaled(settings_for, session_for, name, topology_seconds=3600)
    one_shot_when(session, kept, {"acme": 2, "globex": 1})
    # Another process of Warren's (the same database) unbinds, keeping the queue.
    other, _ = scaled(settings_for, session_for, name, topology_seconds=3600)

    unbind(other, "acme", delete=False, force=False, actor="test")

    assert kept.load(name, "tenants") is None
    assert tenants_of(fetch_overview(session, None, kept)) == {"globex": 1}


def test_the_console_reader_starts_from_the_kept_listing_and_lists_again_after_an_unbind(
    settings_for, session_for, vhost
):
    name, channel = vhost
    queue = tenant_with_messages(channel, "tenants", "acme", "q.acme", 2)
    tenant_with_messages(channel, "tenants", "globex", "q.globex", 1)
    session, kept = scaled(settings_for, session_for, name, topology_seconds=3600)
    one_shot_when(session, kept, {"acme": 2, "globex": 1})
    channel.queue_bind(queue, "tenants", routing_key="initech")
    reader = OverviewReader(session, kept)

    # The first page: the kept listing, with the counts of now.
    assert tenants_of(reader.read()) == {"acme": 2, "globex": 1}
    # A later read lists again (the statistics are due), and keeps what it listed.
    assert tenants_of(reader.read()) == {"acme": 2, "globex": 1, "initech": 2}
    assert set(kept.load(name, "tenants").tenants[queue]) == {"acme", "initech"}
    unbind(session, "globex", delete=False, force=False, actor="test")
    # The reader's own listing is a minute young, but an action changed the bindings.
    assert tenants_of(reader.read()) == {"acme": 2, "initech": 2}


def test_a_listing_is_never_reused_for_another_user(
    settings_for, session_for, vhost, broker, broker_user
):
    name, channel = vhost
    tenant_with_messages(channel, "tenants", "acme", "q.acme", 2)
    session, kept = scaled(settings_for, session_for, name, topology_seconds=3600)
    one_shot_when(session, kept, {"acme": 2})
    user, password = broker_user("monitoring")

    _, other = scaled(settings_for, session_for, name, username=user, password=password)

    assert kept.load(name, "tenants") is not None
    assert other.load(name, "tenants") is None


def test_the_one_shot_cli_keeps_its_listing_for_the_next_run(broker, vhost, tmp_path):
    name, channel = vhost
    queue = tenant_with_messages(channel, "tenants", "acme", "q.acme", 2)
    audit = tmp_path / "audit.sqlite"
    env = {
        "WARREN_VHOST": name,
        "WARREN_METRICS_URL": broker.metrics_url,
        "WARREN_STATISTICS_UP_TO": "0",
    }

    def tenants() -> set[str]:
        run = run_cli(broker, audit, "tenants", "--json", **env)
        assert run.returncode == 0, run.stderr
        return {row["tenant"] for row in json.loads(run.stdout)}

    wait_until(lambda: tenants() == {"acme"}, what="the first run to count acme")
    channel.queue_bind(queue, "tenants", routing_key="initech")
    assert tenants() == {"acme"}  # the listing the first run kept
    assert run_cli(broker, audit, "unbind", "--tenant", "acme", "--yes", **env).returncode == 0
    assert tenants() == {"initech"}


def test_a_listing_the_same_as_the_last_renews_the_kept_date_without_writing_it_again(
    settings_for, session_for, vhost
):
    name, channel = vhost
    queue = tenant_with_messages(channel, "tenants", "acme", "q.acme", 2)
    session, kept = scaled(settings_for, session_for, name, topology_seconds=3600)

    def row() -> tuple[float, str]:
        with kept.database.transaction() as db:
            return db.execute("SELECT listed_at, body FROM topologies").fetchone()

    first = list_topology(session, kept=kept)
    # Marked (a space after the JSON): a body written again would lose the mark.
    with kept.database.transaction() as db:
        db.execute("UPDATE topologies SET body = body || ' '")
    listed_at, body = row()
    list_topology(session, kept=kept, previous=first)
    renewed_at, same_body = row()
    channel.queue_bind(queue, "tenants", routing_key="initech")
    list_topology(session, kept=kept, previous=first)
    _, new_body = row()

    assert renewed_at > listed_at and same_body == body and body.endswith(" ")
    assert '"initech"' in new_body and not new_body.endswith(" ")
