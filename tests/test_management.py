"""The management client's answers to refusals and faults: each one a sentence of its own type."""

import time

import pytest

from dashboard.broker.management import ManagementClient
from dashboard.errors import BrokerUnreachable, Forbidden, ServerError
from dashboard.local.rabbitmq import free_port
from dashboard.reads.overview import fetch_overview
from tests.support.faultserver import FaultServer
from tests.support.helpers import tenant_with_messages, wait_until

READ_ONLY = ("", "", ".*")  # configure, write, read


def test_user_without_management_tag_is_refused_with_the_reason(settings_for, broker_user):
    name, password = broker_user("", READ_ONLY)
    settings = settings_for(username=name, password=password)
    with ManagementClient(settings) as client, pytest.raises(Forbidden) as caught:
        client.list_queues_in("/", ["name"])
    assert str(caught.value) == (
        f"User {name!r} may not read the queues of vhost '/' on {settings.management_url}: "
        "Not management user (401)."
    )


def test_monitoring_user_needs_access_to_the_vhost(session_for, broker_user):
    name, password = broker_user("monitoring", None)
    session = session_for(username=name, password=password)
    with pytest.raises(Forbidden) as caught:
        fetch_overview(session)
    assert "User not authorised to access virtual host (401)." in str(caught.value)


def test_monitoring_user_with_read_permission_sees_the_overview(
    session_for, channel, unique, broker_user
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 2)
    name, password = broker_user("monitoring", READ_ONLY)
    session = session_for(username=name, password=password, tenant_exchange=exchange)
    overview = wait_until(
        lambda: (view := fetch_overview(session)).totals.ready == 2 and view,
        what="2 ready",
    )
    assert [(row.tenant, row.queue) for row in overview.rows] == [("acme", queue)]


@pytest.fixture
def faulty():
    servers = []

    def serve(*script):
        servers.append(FaultServer(list(script)))
        return servers[-1]

    yield serve
    for server in servers:
        server.close()


def test_server_error_with_reason(settings_for, faulty):
    server = faulty((500, b'{"error":"internal","reason":"stats db down"}', 0))
    client = ManagementClient(settings_for(management_url=server.url))
    with client, pytest.raises(ServerError) as caught:
        client.list_queues_in("/", ["name"])
    assert str(caught.value) == (
        f"The management API at {server.url} failed with HTTP 500 while reading "
        "the queues of vhost '/': stats db down."
    )


def test_answer_that_is_not_json(settings_for, faulty):
    server = faulty((200, b"<html>proxy login</html>", 0))
    client = ManagementClient(settings_for(management_url=server.url))
    with client, pytest.raises(ServerError) as caught:
        client.whoami()
    assert str(caught.value) == (
        f"The management API at {server.url} sent something that is not JSON for "
        "the current user (HTTP 200)."
    )


def test_gets_are_retried_on_503_then_succeed(settings_for, faulty):
    server = faulty((503, b"{}", 0), (503, b"{}", 0), (200, b'{"name": "guest", "tags": []}', 0))
    with ManagementClient(settings_for(management_url=server.url)) as client:
        assert client.whoami()["name"] == "guest"
    assert server.requests == ["/api/whoami"] * 3


def test_a_hanging_node_times_out_with_a_sentence(settings_for, faulty):
    server = faulty((200, b"[]", 30))
    settings = settings_for(management_url=server.url, request_timeout=0.5)
    started = time.monotonic()
    with ManagementClient(settings) as client, pytest.raises(BrokerUnreachable) as caught:
        client.whoami()
    assert time.monotonic() - started < 10
    assert str(caught.value) == (
        f"The management API at {server.url} did not answer within 0.5 s while reading "
        "the current user."
    )


def test_with_several_nodes_it_reads_from_the_first_that_answers(broker, settings_for):
    stopped = f"http://127.0.0.1:{free_port()}"
    settings = settings_for(management_url=f"{stopped}, {broker.management_url}")

    with ManagementClient(settings) as client:
        assert client.answering().node == broker.node
        assert client.base_url == broker.management_url
    # A new client starts at the node that answered last.
    assert ManagementClient(settings).base_url == broker.management_url


def test_when_no_node_answers_the_sentence_names_each(settings_for):
    first, second = (f"http://127.0.0.1:{free_port()}" for _ in range(2))
    settings = settings_for(management_url=f"{first},{second}")

    with ManagementClient(settings) as client, pytest.raises(BrokerUnreachable) as caught:
        client.cluster_name()
    assert str(caught.value) == (
        "No node of the cluster answered: "
        f"Cannot reach the management API at {first}: connection refused. "
        f"Cannot reach the management API at {second}: connection refused."
    )
