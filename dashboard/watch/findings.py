"""What the watcher found, in the one shape its metrics, the shipped alert rules and its webhook
share: one flag on one tenant queue, consumer (pod) or node, with the console's one-line reason
and the console link that opens on it."""

from typing import Literal
from urllib.parse import urlencode

from pydantic import BaseModel

from dashboard.reads.models import ConsumerReport, Flag, Overview
from dashboard.reads.nodes import Cluster, node_flags

Scope = Literal["tenant", "consumer", "node"]
# Every kind each scope's flags can have, as the console names them; the alert rules
# (docs/prometheus/warren-rules.yml) hold one alert for each.
KINDS: dict[Scope, tuple[str, ...]] = {
    "tenant": (
        "no-consumer",
        "no-acks",
        "dead-letters-growing",
        "redelivery-loop",
        "backlog-growing",
    ),
    "consumer": (
        "stuck",
        "near-consumer-timeout",
        "waiting-behind-job",
        "idle",
        "auto-ack",
        "unlimited-prefetch",
    ),
    "node": ("down", "memory", "disk", "partition"),
}
# Worth waking someone for: a backlog or held work going nowhere, a blocked cluster. The others
# are a backlog outgrowing its pods (a burst does that too), habits of a pod, jobs too long for
# the broker's limit, or a prefetch that keeps jobs waiting, to fix by day.
NOT_PAGING = {
    "backlog-growing",
    "near-consumer-timeout",
    "waiting-behind-job",
    "idle",
    "auto-ack",
    "unlimited-prefetch",
}
BROKER_UNREACHABLE = "WarrenBrokerUnreachable"


class Finding(BaseModel):
    scope: Scope
    # The metric's labels but `kind`: vhost, tenant, queue; vhost, pod, queue; node.
    labels: dict[str, str]
    kind: str
    reason: str
    link: str

    @property
    def key(self) -> tuple:
        return (self.scope, self.kind, *sorted(self.labels.items()))

    @property
    def alertname(self) -> str:
        return alert_name(self.scope, self.kind)

    @property
    def severity(self) -> str:
        return "info" if self.kind in NOT_PAGING else "page"


def alert_name(scope: Scope, kind: str) -> str:
    """`consumer`, `unlimited-prefetch` -> `WarrenConsumerUnlimitedPrefetch`."""
    return "Warren" + scope.title() + "".join(word.title() for word in kind.split("-"))


def findings_of(
    overview: Overview | None,
    consumers: ConsumerReport | None,
    cluster: Cluster | None,
    console_url: str,
    default_vhost: str | None = None,
) -> list[Finding]:
    """Every flag of the latest good data, once per series (two consumers of one pod on one
    queue with the same flag are one finding). A link into another vhost than
    `default_vhost` (the console's WARREN_VHOST) carries `vhost=`."""
    found = [
        *_tenant_findings(overview, console_url, default_vhost),
        *_consumer_findings(consumers, console_url, default_vhost),
        *_node_findings(cluster, console_url),
    ]
    unique: dict[tuple, Finding] = {}
    for finding in found:
        unique.setdefault(finding.key, finding)
    return list(unique.values())


def _link(console_url: str, page: str, params: dict, vhost: str, default: str | None) -> str:
    in_vhost = {} if default is None or vhost == default else {"vhost": vhost}
    return f"{console_url}/{page}?{urlencode(params | in_vhost)}"


def _tenant_findings(
    overview: Overview | None, console_url: str, default_vhost: str | None
) -> list[Finding]:
    return [
        _finding(
            "tenant",
            {"vhost": row.vhost, "tenant": row.tenant, "queue": row.queue},
            flag,
            _link(console_url, "tenant", {"tenant": row.tenant}, row.vhost, default_vhost),
        )
        for row in (overview.rows if overview else [])
        for flag in row.flags
    ]


def _consumer_findings(
    report: ConsumerReport | None, console_url: str, default_vhost: str | None
) -> list[Finding]:
    return [
        _finding(
            "consumer",
            {"vhost": load.vhost, "pod": load.connection, "queue": load.queue},
            flag,
            _link(console_url, "consumers", {"q": load.connection}, load.vhost, default_vhost),
        )
        for load in (report.loads if report else [])
        for flag in load.flags
    ]


def _node_findings(cluster: Cluster | None, console_url: str) -> list[Finding]:
    return [
        _finding("node", {"node": node.name}, flag, f"{console_url}/nodes")
        for node in (cluster.nodes if cluster else [])
        for flag in node_flags(node)
    ]


def _finding(scope: Scope, labels: dict[str, str], flag: Flag, link: str) -> Finding:
    return Finding(scope=scope, labels=labels, kind=flag.kind, reason=flag.reason, link=link)
