"""Warren on a three-node cluster with quorum queues: failover between nodes, the nodes page,
and moves that lose nothing while a node is down. One cluster for the module (about a minute
to start and join)."""

import json
import time
from collections.abc import Iterator

import pika
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.broker.session import Session
from dashboard.local.rabbitmq import LocalBroker, LocalCluster
from dashboard.reads.nodes import fetch_cluster
from dashboard.reads.queue_detail import fetch_queue_detail
from dashboard.settings import Settings, load_settings
from pages.components.formatting import literal
from tests.support.helpers import drain, fill, queue_counts, run_cli, wait_until


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(3) as nodes:
        yield nodes


@pytest.fixture
def settings(cluster: LocalCluster, tmp_path) -> Settings:
    return load_settings(
        management_url=cluster.management_url,
        amqp_url=cluster.amqp_url,
        metrics_url="off",
        refresh_seconds=1,
        request_timeout=5,
        history_db=tmp_path / "history.sqlite",
        audit_db=tmp_path / "audit.sqlite",
    )


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    with Session(settings) as session:
        yield session


def cli(cluster: LocalCluster, settings: Settings, *args: str):
    done = run_cli(
        cluster.nodes[0],
        settings.audit_db,
        *args,
        WARREN_MANAGEMENT_URL=cluster.management_url,
        WARREN_AMQP_URL=cluster.amqp_url,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def channel_on(node: LocalBroker):
    """A confirming channel on `node`: a queue declared through it has its leader there."""
    chan = pika.BlockingConnection(pika.URLParameters(node.amqp_url)).channel()
    chan.confirm_delivery()
    return chan


def drained_ids(chan, queue: str) -> list[str]:
    return sorted(properties.message_id for _body, properties in drain(chan, queue))


def quorum_tenant(cluster, settings, unique, ready: int = 0) -> tuple[str, str]:
    """A quorum tenant onboarded through the CLI (leader on node 1), with `ready` messages."""
    tenant = unique("q")
    cli(cluster, settings, "bind", "--tenant", tenant, "--queue-type", "quorum", "--yes")
    queue = f"tenant.{tenant}"
    fill(channel_on(cluster.nodes[0]), queue, ready)
    return tenant, queue


def running(cluster: LocalCluster, settings: Settings) -> dict[str, bool]:
    """Each node's name -> whether it runs, as `warren nodes` sees it."""
    nodes = json.loads(cli(cluster, settings, "nodes", "--json").stdout)["nodes"]
    return {node["name"]: node["running"] for node in nodes}


def tenant_row(records: list[dict], tenant: str) -> dict:
    [row] = [record for record in records if record["tenant"] == tenant]
    return row


def test_reads_and_acts_through_node_2_while_node_1_is_stopped(cluster, settings, session, unique):
    tenant, queue = quorum_tenant(cluster, settings, unique, ready=40)
    first = cluster.nodes[0]
    client = session.client
    assert client.answering().node == first.node
    first.ctl("stop_app")
    try:
        started = time.monotonic()
        assert client.answering().node == cluster.nodes[1].node
        failover = time.monotonic() - started
        print(f"\nfailover: the first read after node 1 stopped took {failover:.2f} s")
        done = cli(cluster, settings, "tenants", "--json")
        assert tenant_row(json.loads(done.stdout), tenant)["queue"] == queue

        nodes = json.loads(cli(cluster, settings, "nodes", "--json").stdout)
        assert nodes["read_from"] == cluster.nodes[1].management_url
        assert running(cluster, settings) == {
            node.node: node is not first for node in cluster.nodes
        }

        cli(cluster, settings, "purge", "--queue", queue, "--yes")
        assert queue_counts(settings, queue)[0] == 0
    finally:
        first.ctl("start_app")
        first.wait_answering()


@pytest.fixture
def cluster_page(cluster, settings, console):
    """Runs a console page (AppTest) pointed at the cluster."""

    def run(page: str) -> AppTest:
        app = console(
            page=page,
            WARREN_MANAGEMENT_URL=cluster.management_url,
            WARREN_AMQP_URL=cluster.amqp_url,
            WARREN_METRICS_URL="off",
            WARREN_AUDIT_DB=str(settings.audit_db),
        )
        assert not app.exception
        return app

    return run


def banners(app: AppTest) -> list[str]:
    return [error.value for error in app.error]


def test_the_console_shows_the_nodes_and_a_stopped_node_on_every_page(
    cluster, settings, cluster_page
):
    third = cluster.nodes[2]
    third.ctl("stop_app")
    try:
        wait_until(
            lambda: not running(cluster, settings)[third.node], what="node 3 seen as stopped"
        )
        shown = banners(cluster_page("pages/consumers.py"))
        assert any(literal(f"Node {third.node} is not running") in b for b in shown), shown
        app = cluster_page("pages/nodes.py")
        assert any(literal(f"Node {third.node} is not running") in b for b in banners(app))
        table = app.dataframe[0].value
        assert sorted(table["node"]) == sorted(node.node for node in cluster.nodes)
        assert dict(zip(table["node"], table["running"], strict=True))[third.node] == False  # noqa: E712
        captions = [caption.value for caption in app.caption]
        assert any("2 of 3 nodes running" in caption for caption in captions), captions
    finally:
        third.ctl("start_app")
        third.wait_answering()


def test_a_quorum_tenant_counts_ready_and_unacked_exactly(cluster, settings, session, unique):
    tenant, queue = quorum_tenant(cluster, settings, unique, ready=7)
    pod = unique("pod")
    params = pika.URLParameters(cluster.nodes[1].amqp_url)
    params.client_properties = {"connection_name": pod}
    holder = pika.BlockingConnection(params).channel()
    holder.basic_qos(prefetch_count=3)
    held = []
    holder.basic_consume(queue, lambda *delivery: held.append(delivery))
    wait_until(lambda: holder.connection.process_data_events(0.1) or len(held) == 3)

    def row() -> dict:
        return tenant_row(json.loads(cli(cluster, settings, "tenants", "--json").stdout), tenant)

    wait_until(
        lambda: (lambda r: (r["ready"], r["unacked"], r["consumers"]) == (4, 3, 1))(row()),
        what="4 ready, 3 unacked, 1 consumer",
    )
    assert row()["queue_type"] == "quorum"
    detail = dict(fetch_queue_detail(session, queue).settings)
    members = ", ".join(sorted(node.node for node in cluster.nodes))
    assert (detail["Leader"], detail["Members"], detail["Members offline"]) == (
        cluster.nodes[0].node, members, "none"
    )  # fmt: skip
    dry_run = cli(cluster, settings, "requeue", "--connection", pod, "--dry-run")
    assert f"On quorum queue {queue} each message returned counts" in dry_run.stdout
    limit = {3: "It has no delivery limit", 4: "Its delivery limit is 20"}
    assert limit[session.client.broker_version().major] in dry_run.stdout
    cli(cluster, settings, "requeue", "--connection", pod, "--yes")  # x-delivery-count 1 each
    wait_until(lambda: queue_counts(settings, queue)[0] == 7, what="the 3 held back in the queue")

    peeked = json.loads(cli(cluster, settings, "peek", "--queue", queue, "--count", "7",
                            "--yes", "--json").stdout)  # fmt: skip
    counts = sorted(message["delivery_count"] or 0 for message in peeked["messages"])
    assert counts == [0, 0, 0, 0, 1, 1, 1]


def test_a_requeue_between_quorum_queues_loses_nothing_while_a_follower_is_down(
    cluster, settings, unique
):
    tenant, queue = quorum_tenant(cluster, settings, unique)
    dead_letters = f"{queue}.dlq"
    death = {"queue": queue, "reason": "rejected", "count": 1, "routing-keys": [tenant]}
    fill(channel_on(cluster.nodes[0]), dead_letters, 3000, headers={"x-death": [death]})
    follower = cluster.nodes[2]
    follower.ctl("stop_app")
    try:
        done = cli(cluster, settings, "requeue", "--from", dead_letters, "--yes", "--json")
        report = json.loads(done.stdout)
        assert (report["moved"], report["failed"], report["left"]) == (3000, 0, 0)
        chan = channel_on(cluster.nodes[1])
        assert drained_ids(chan, queue) == sorted(f"m-{n}" for n in range(3000))
        assert drained_ids(chan, dead_letters) == []
    finally:
        follower.ctl("start_app")
        follower.wait_answering()


def test_a_memory_alarm_shows_as_a_banner_on_every_page(cluster, session, cluster_page):
    second = cluster.nodes[1]

    def alarms() -> list[str]:
        return fetch_cluster(session).alarms

    second.ctl("set_vm_memory_high_watermark", "0.0001")
    try:
        [alarm] = wait_until(alarms, what="the memory alarm")
        assert alarm.startswith(f"Memory alarm on {second.node}: it uses ")
        assert alarm.endswith("and publishers on the whole cluster are blocked.")
        for page in ("pages/audit.py", "pages/onboarding.py"):
            assert literal(alarm.split(":")[0]) in " ".join(banners(cluster_page(page)))
    finally:
        second.ctl("set_vm_memory_high_watermark", "0.4")
        wait_until(lambda: not alarms(), what="the memory alarm cleared")
