"""The management client's answers to refusals and faults: each one a sentence of its own type."""

import json
import time
from dataclasses import replace

import pytest

from dashboard.broker import management
from dashboard.broker.management import ManagementClient
from dashboard.broker.models import ListedQueue, QueueInfo, parse_each
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


# A listing's items of every JSON kind, with what must survive a cut anywhere: escapes,
# non-ASCII, numbers that a cut would shorten (12 as 1, 1.5e3 as 1).
LISTING = [
    {"name": 'say "hi" ]},{', "vhost": "/é\u2028", "arguments": {"x-max-priority": 10}},
    12,
    1.5e3,
    -0.25,
    "x",
    True,
    None,
    [],
    {"nested": [{"a": [1, {"b": None}]}]},
]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
def test_a_listing_is_read_item_by_item_across_any_cut(settings_for, faulty, monkeypatch, chunk):
    monkeypatch.setattr(management, "CHUNK_BYTES", chunk)
    body = json.dumps(LISTING, ensure_ascii=False, indent=1).encode()
    server = faulty((200, body, 0))
    seen = []
    with ManagementClient(settings_for(management_url=server.url)) as client:
        kept = client.get_each(("queues", "/"), "the queues", None, lambda item: seen.append(item))
    assert seen == LISTING
    assert kept == [None] * len(LISTING)


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        (b"<html>proxy login</html>", "sent something that is not JSON for the queues (HTTP 200)"),
        (b'[{"name": "q"},', "sent something that is not JSON for the queues (HTTP 200)"),
        (b'[{"name": "q"}] []', "sent something that is not JSON for the queues (HTTP 200)"),
        (b'[{"name": "q"} {"name": "r"}]', "sent something that is not JSON for the queues"),
        (b"[12", "sent something that is not JSON for the queues (HTTP 200)"),
        (b'{"name": "q"}', "could not read the queues: the answer does not have the expected"),
    ],
)
def test_a_listing_that_is_not_a_json_list_is_a_sentence(settings_for, faulty, body, sentence):
    server = faulty((200, body, 0))
    client = ManagementClient(settings_for(management_url=server.url))
    with client, pytest.raises(ServerError) as caught:
        client.get_each(("queues", "/"), "the queues", None, lambda item: item)
    assert sentence in str(caught.value)


@pytest.mark.parametrize(
    "raw",
    [
        {"name": "q", "vhost": "/"},
        {"name": "q", "vhost": "/", "messages": 0, "message_stats": []},
        {"name": "q", "vhost": "/", "messages": 0, "message_stats": {"ack": 3}},
        {"name": "q", "vhost": "/", "messages": 2, "head_message_timestamp": 1796604072},
        {"name": "q", "vhost": "/", "consumer_capacity": None, "consumer_utilisation": 1},
        {"name": "q", "vhost": "/", "consumer_capacity": 0, "consumer_utilisation": 0},
        {
            "name": "q",
            "vhost": "/",
            "type": "quorum",
            "state": "running",
            "arguments": {"x-dead-letter-exchange": "", "x-max-priority": 10},
            "effective_policy_definition": {"dead-letter-routing-key": "dead", "max-length": 9},
            "message_stats": {
                "ack": 10,
                "redeliver": 1,
                "publish_details": {"rate": 1},
                "ack_details": {"rate": 0.5},
                "deliver_get_details": {},
            },
        },
    ],
)
def test_a_listed_queue_reads_as_the_queue_model_does(raw):
    listed = parse_each(ListedQueue, "the queue list")(raw)
    info = QueueInfo.model_validate(raw)

    def rate(details):
        return None if details is None else (details.rate, type(details.rate))

    for attribute in ("name", "type", "state", "messages", "counted", "capacity"):
        assert getattr(listed, attribute) == getattr(info, attribute), attribute
    assert repr(listed.head_message_timestamp) == repr(info.head_message_timestamp)
    assert repr(listed.capacity) == repr(info.capacity)
    assert (listed.message_stats is None) == (info.message_stats is None)
    if info.message_stats:
        for name in ("publish_details", "deliver_get_details", "ack_details"):
            got, expected = getattr(listed.message_stats, name), getattr(info.message_stats, name)
            assert rate(got) == rate(expected), name
        assert (listed.message_stats.ack, listed.message_stats.redeliver) == (
            info.message_stats.ack,
            info.message_stats.redeliver,
        )
    for argument in ("x-dead-letter-exchange", "x-dead-letter-routing-key"):
        assert listed.effective(argument) == info.effective(argument), argument


def test_a_listed_queue_of_another_shape_is_a_sentence():
    with pytest.raises(ServerError) as caught:
        parse_each(ListedQueue, "the queue list")({"name": "q", "messages": "x"})
    assert str(caught.value) == (
        "Warren could not read the queue list: the answer does not have the expected shape."
    )


def test_a_listed_queue_made_by_field_name_keeps_what_it_is_given():
    """The fields read under the broker's names (aliases) take their own names too."""
    policy = {"dead-letter-exchange": "dlx"}
    queue = ListedQueue(name="q", has_counts=False, dead_letter_policy=policy)
    assert (queue.has_counts, queue.dead_letter_policy) == (False, policy)
    assert replace(queue, has_counts=True).has_counts
