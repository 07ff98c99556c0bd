"""Counts from the broker's Prometheus endpoint: the same numbers as the management API, only
from this broker, with the topology listed again when a queue appears."""

from dashboard.broker.metrics import QueueCounts, parse_metrics
from dashboard.local.rabbitmq import free_port
from dashboard.reads.overview import OverviewReader, fetch_overview
from tests.support.helpers import tenant_with_messages, wait_until

SAMPLE = """# TYPE rabbitmq_detailed_queue_messages_ready gauge
rabbitmq_detailed_queue_messages_ready{vhost="/",queue="plain"} 3
rabbitmq_detailed_queue_messages_ready{vhost="/",queue="say "hi" {x} 1"} 1
rabbitmq_detailed_queue_messages_ready{vhost="other",queue="plain"} 99
rabbitmq_detailed_queue_messages_unacked{vhost="/",queue="plain"} 2
rabbitmq_detailed_queue_messages{vhost="/",queue="plain"} 5
rabbitmq_detailed_queue_process_reductions_total{vhost="/",queue="plain"} 123456
rabbitmq_detailed_queue_consumers{vhost="/",queue="plain"} 1
rabbitmq_identity_info{rabbitmq_node="n@h",rabbitmq_cluster="c@h",rabbitmq_cluster_id="x"} 1
"""


def test_the_endpoint_text_is_read_per_queue_of_the_vhost():
    answer = parse_metrics(SAMPLE, "/")
    assert answer.cluster == "c@h"
    assert answer.counts == {
        "plain": QueueCounts(ready=3, unacked=2, total=5, consumers=1),
        'say "hi" {x} 1': QueueCounts(ready=1, unacked=0, total=0, consumers=0),
    }


def counts(overview) -> list[tuple]:
    return [(r.tenant, r.ready, r.unacked, r.consumers, r.dead_letters) for r in overview.rows]


def test_counts_from_the_endpoint_equal_the_management_api(session_for, channel, unique, pod):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 5)
    tenant_with_messages(channel, exchange, "bravo", unique("bravo"), 2)
    channel.basic_publish("", f"{queue}.dlq", b"dead", mandatory=True)
    assert pod(unique("pod")).hold(queue, prefetch=2, expect=2) == 2
    session = session_for(tenant_exchange=exchange)
    expected = [("acme", 3, 2, 1, 1), ("bravo", 2, 0, 0, 0)]
    wait_until(
        lambda: counts(fetch_overview(session)) == expected,
        what="the management API's counts to settle",
    )
    reader = OverviewReader(session)

    listed, from_metrics = reader.read(), reader.read()

    assert (listed.counts_from, from_metrics.counts_from) == ("management", "metrics")
    assert counts(from_metrics) == counts(listed) == expected
    assert from_metrics.totals == listed.totals


def test_a_new_tenant_queue_shows_on_the_next_read(session_for, channel, unique):
    exchange = unique("tenants")
    tenant_with_messages(channel, exchange, "acme", unique("acme"), 1)
    reader = OverviewReader(session_for(tenant_exchange=exchange, topology_seconds=3600))
    assert [row.tenant for row in reader.read().rows] == ["acme"]

    tenant_with_messages(channel, exchange, "bravo", unique("bravo"), 0)

    wait_until(
        lambda: sorted(row.tenant for row in reader.read().rows) == ["acme", "bravo"],
        what="bravo in the overview",
    )


def test_another_brokers_endpoint_is_never_used(session_for, channel, unique, second_broker):
    exchange = unique("tenants")
    tenant_with_messages(channel, exchange, "acme", unique("acme"), 1)
    reader = OverviewReader(
        session_for(tenant_exchange=exchange, metrics_url=second_broker.metrics_url)
    )
    reads = [reader.read(), reader.read()]
    assert [overview.counts_from for overview in reads] == ["management", "management"]
    assert reader.metrics is None


def test_no_endpoint_where_auto_looks_means_the_management_api(session_for, channel, unique):
    exchange = unique("tenants")
    tenant_with_messages(channel, exchange, "acme", unique("acme"), 1)
    reader = OverviewReader(
        session_for(tenant_exchange=exchange, metrics_url=f"http://127.0.0.1:{free_port()}")
    )
    reads = [reader.read(), reader.read()]
    assert [overview.counts_from for overview in reads] == ["management", "management"]
    assert reader.metrics is None
