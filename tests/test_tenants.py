"""The tenant overview against a real broker: exact counts, odd names, vhosts, missing pieces."""

import json

import pytest

from dashboard.broker.management import api_path
from dashboard.broker.models import QueueInfo
from dashboard.errors import BrokerUnreachable, TenantExchangeMissing, Unauthorized
from dashboard.local.rabbitmq import free_port
from dashboard.reads.models import rows_json
from dashboard.reads.overview import fetch_overview
from dashboard.reads.stuck import flag_overview
from tests.support.helpers import publish, ready_and_consumers, tenant_with_messages, wait_until


def overview_when(session, expected: dict) -> object:
    """The overview once its (tenant, queue) -> (ready, unacked, consumers) equal `expected`."""

    def matches():
        overview = fetch_overview(session)
        seen = {(r.tenant, r.queue): (r.ready, r.unacked, r.consumers) for r in overview.rows}
        return overview if seen == expected else None

    return wait_until(matches, what=f"the overview to show {expected}")


def test_api_path_quotes_every_segment_whole():
    assert api_path("queues", "/", "a b#c%2F/d?é") == "/api/queues/%2F/a%20b%23c%252F%2Fd%3F%C3%A9"


def test_queue_without_the_asked_for_stats_parses():
    # What 3.10 sends for a queue with publishes only, asked for ack and deliver rates.
    queue = QueueInfo.model_validate({"name": "q", "vhost": "/", "message_stats": []})
    assert queue.message_stats is None


def test_twenty_two_tenants_with_consumers_match_amqp(session_for, channel, unique, pod):
    exchange = unique("tenants")
    session = session_for(tenant_exchange=exchange)
    published = {f"tenant-{number:02d}": number + 1 for number in range(22)}
    queues = {
        tenant: tenant_with_messages(channel, exchange, tenant, unique(f"q.{tenant}"), count)
        for tenant, count in published.items()
    }
    pod_a, pod_b = pod("pod-a"), pod("pod-b")
    held = {
        queues["tenant-09"]: pod_a.hold(queues["tenant-09"], prefetch=3, expect=3),
        queues["tenant-15"]: pod_a.hold(queues["tenant-15"], prefetch=5, expect=5),
        queues["tenant-21"]: pod_b.hold(queues["tenant-21"], prefetch=2, expect=2),
    }
    assert list(held.values()) == [3, 5, 2]
    expected = {}
    for tenant, queue in queues.items():
        ready, consumers = ready_and_consumers(channel, queue)
        expected[(tenant, queue)] = (ready, held.get(queue, 0), consumers)
    assert expected[("tenant-09", queues["tenant-09"])] == (10 - 3, 3, 1)

    overview = overview_when(session, expected)

    # Most ready first; equal ready (21 holds 2 of its 22) goes by total.
    assert [row.tenant for row in overview.rows[:3]] == ["tenant-20", "tenant-21", "tenant-19"]
    assert [row.ready for row in overview.rows[:3]] == [21, 20, 20]
    assert overview.totals.model_dump() == {
        "tenants": 22,
        "queues": 22,
        "ready": sum(published.values()) - 10,
        "unacked": 10,
        "total": sum(published.values()),
        "consumers": 3,
    }
    assert {row.queue_type for row in overview.rows} == {"classic"}
    assert {row.state for row in overview.rows} == {"running"}


def test_queue_bound_under_two_tenant_ids_shows_a_row_each_and_counts_once(
    session_for, channel, unique
):
    exchange = unique("tenants")
    session = session_for(tenant_exchange=exchange)
    shared = tenant_with_messages(channel, exchange, "alpha", unique("shared"), 4)
    channel.queue_bind(shared, exchange, routing_key="beta")
    publish(channel, exchange, "beta", 2)
    own = tenant_with_messages(channel, exchange, "gamma", unique("own"), 1)

    overview = overview_when(
        session,
        {("alpha", shared): (6, 0, 0), ("beta", shared): (6, 0, 0), ("gamma", own): (1, 0, 0)},
    )

    others = {row.tenant: row.shares_queue_with for row in overview.rows}
    assert others == {"alpha": ["beta"], "beta": ["alpha"], "gamma": []}
    assert (overview.totals.tenants, overview.totals.queues, overview.totals.ready) == (3, 2, 7)


def test_one_tenant_id_bound_to_two_queues_shows_both(session_for, channel, unique):
    exchange = unique("tenants")
    session = session_for(tenant_exchange=exchange)
    first = tenant_with_messages(channel, exchange, "acme", unique("acme-a"), 0)
    second = tenant_with_messages(channel, exchange, "acme", unique("acme-b"), 0)
    publish(channel, exchange, "acme", 3)

    overview = overview_when(session, {("acme", first): (3, 0, 0), ("acme", second): (3, 0, 0)})

    assert (overview.totals.tenants, overview.totals.queues, overview.totals.ready) == (1, 2, 6)


def test_exchange_to_exchange_bindings_are_not_tenants(session_for, channel, unique):
    exchange = unique("tenants")
    session = session_for(tenant_exchange=exchange)
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 1)
    downstream = unique("downstream")
    channel.exchange_declare(downstream, "fanout", auto_delete=True)
    channel.exchange_bind(downstream, exchange, routing_key="not-a-tenant")

    overview_when(session, {("acme", queue): (1, 0, 0)})


HOSTILE_TENANTS = ["acme corp", "ü-tenant ☃", "a#b", "%2F", "x/y?z", "50%", "<b>bold</b>"]


def test_hostile_tenant_ids_and_queue_names_come_back_exactly(session_for, channel, unique):
    exchange = unique("tenants #%/?é")
    session = session_for(tenant_exchange=exchange)
    expected = {}
    for number, tenant in enumerate(HOSTILE_TENANTS, start=1):
        queue = unique(f"q {tenant} #%2F/?")
        tenant_with_messages(channel, exchange, tenant, queue, number)
        expected[(tenant, queue)] = (number, 0, 0)

    overview = overview_when(session, expected)

    # The one-shot's JSON, serialised at once, says what each row's record says.
    flag_overview(overview, None, session.settings)
    assert all(row.flags and row.wait for row in overview.rows)
    assert json.loads(rows_json(overview.rows)) == [row.record("json") for row in overview.rows]


def test_second_vhost_with_a_hostile_name(broker, session_for, channel, unique, pod):
    default_queue = tenant_with_messages(channel, "tenants", "acme", unique("acme-default"), 2)
    vhost = unique("eu/west #1 ü")
    broker.ctl("add_vhost", vhost)
    broker.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        vhost_channel = pod("vhost-setup", vhost=vhost).connection.channel()
        vhost_channel.confirm_delivery()
        queue = tenant_with_messages(vhost_channel, "tenants", "acme", "acme", 5)
        session = session_for(vhost=vhost)

        overview = overview_when(session, {("acme", queue): (5, 0, 0)})

        assert {row.vhost for row in overview.rows} == {vhost}
        default_vhost = fetch_overview(session_for())
        acme_queues = {row.queue for row in default_vhost.rows if row.tenant == "acme"}
        assert default_queue in acme_queues
        assert "acme" not in acme_queues
    finally:
        broker.ctl("delete_vhost", vhost)


def test_missing_tenant_exchange_is_one_sentence(session_for, unique):
    session = session_for(tenant_exchange=unique("nowhere"))
    settings = session.settings
    with pytest.raises(TenantExchangeMissing) as caught:
        fetch_overview(session)
    assert str(caught.value) == (
        f"The tenant exchange {settings.tenant_exchange!r} does not exist in vhost '/', so there "
        "are no tenant queues to show: check WARREN_TENANT_EXCHANGE and WARREN_VHOST."
    )


def test_wrong_password_is_a_sentence_without_the_password(session_for):
    session = session_for(password="s3cret-Wrong!")
    settings = session.settings
    with pytest.raises(Unauthorized) as caught:
        fetch_overview(session)
    assert str(caught.value) == (
        f"The broker at {settings.management_url} refused user 'guest': "
        "wrong user name or password (401)."
    )
    assert "s3cret" not in str(caught.value)


def test_broker_down_is_a_sentence(session_for):
    session = session_for(management_url=f"http://127.0.0.1:{free_port()}")
    settings = session.settings
    with pytest.raises(BrokerUnreachable) as caught:
        fetch_overview(session)
    assert str(caught.value) == (
        f"Cannot reach the management API at {settings.management_url}: connection refused."
    )
