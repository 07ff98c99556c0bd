"""The cluster's nodes: which run, which raise an alarm, and which node Warren reads from.

A memory or disk alarm blocks every publisher on the whole cluster, a stopped node takes its
queues' leaders elsewhere (or leaves classic queues unavailable), and a partition splits the
cluster: each of these is a sentence shown on every page of the console.
"""

from datetime import UTC, datetime

from pydantic import BaseModel

from dashboard.broker.models import NodeInfo, parse_all
from dashboard.broker.session import Session
from dashboard.reads.models import Flag

COLUMNS = [*NodeInfo.model_fields]


class Cluster(BaseModel):
    nodes: list[NodeInfo]
    # The management URL and node name that answered.
    read_from: str
    read_from_node: str
    # The RabbitMQ version of that node, e.g. "4.0.5".
    version: str
    fetched_at: datetime

    @property
    def alarms(self) -> list[str]:
        return [flag.reason for node in self.nodes for flag in node_flags(node)]


def fetch_cluster(session: Session) -> Cluster:
    client = session.client
    nodes = parse_all(NodeInfo, client.list_nodes(COLUMNS), "the cluster's nodes")
    answering = client.answering()
    return Cluster(
        nodes=sorted(nodes, key=lambda node: node.name),
        read_from=client.base_url,
        read_from_node=answering.node,
        version=answering.version.text,
        fetched_at=datetime.now(UTC),
    )


def node_flags(node: NodeInfo) -> list[Flag]:
    """What is wrong with `node`, each with its sentence for the person on call."""
    if not node.running:
        reason = f"Node {node.name} is not running: its queues' leaders moved or are unavailable."
        return [Flag(kind="down", reason=reason)]
    flags = []
    if node.mem_alarm:
        flags.append(
            Flag(
                kind="memory",
                reason=f"Memory alarm on {node.name}: it uses {_size(node.mem_used)} of its "
                f"{_size(node.mem_limit)} watermark, and publishers on the whole cluster are "
                "blocked.",
            )
        )
    if node.disk_free_alarm:
        flags.append(
            Flag(
                kind="disk",
                reason=f"Disk alarm on {node.name}: {_size(node.disk_free)} free, under its "
                f"limit of {_size(node.disk_free_limit)}; publishers on the whole cluster are "
                "blocked.",
            )
        )
    if node.partitions:
        flags.append(
            Flag(
                kind="partition",
                reason=f"Network partition: {node.name} cannot reach {', '.join(node.partitions)}.",
            )
        )
    return flags


def _size(count: int | None) -> str:
    if count is None:
        return "an unknown amount"
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000:
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1000
    return f"{count:,.1f} TB"
