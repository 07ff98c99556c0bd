"""The tenant overview: queues bound to the tenant exchange, keyed by routing key = tenant id.

An overview is a topology (the tenant bindings, the queues' settings, counts and rates, and where
dead letters go) and, optionally, fresher counts laid over it. At thousands of queues the
topology takes the broker seconds to list while counts come in a fraction of that from its
metrics endpoint, so `OverviewReader` lists the topology less often than it reads counts.
"""

import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import NamedTuple

from dashboard.broker.management import ManagementClient, naming_a_missing_vhost
from dashboard.broker.metrics import QueueCounts
from dashboard.broker.models import Binding, QueueInfo, parse_all
from dashboard.broker.session import Session
from dashboard.errors import BrokerError, NotFound, TenantExchangeMissing
from dashboard.reads.models import Overview, TenantRow, Totals

QUEUE_COLUMNS = (
    "name",
    "vhost",
    "type",
    "state",
    "messages_ready",
    "messages_unacknowledged",
    "messages",
    "consumers",
    "consumer_capacity",
    "consumer_utilisation",
    "message_stats.publish_details.rate",
    "message_stats.deliver_get_details.rate",
    "message_stats.ack_details.rate",
    "message_stats.ack",
    "message_stats.redeliver",
    "head_message_timestamp",
    "arguments",
    "effective_policy_definition",
)
# What a listing without statistics needs: where a queue's dead letters go.
SETTINGS_COLUMNS = ("name", "vhost", "type", "arguments", "effective_policy_definition")
DLX = "x-dead-letter-exchange"
DLRK = "x-dead-letter-routing-key"


def tenant_bindings(session: Session) -> list[Binding]:
    """The tenant exchange's bindings to queues (exchange-to-exchange bindings are not tenants).

    The broker answers a missing exchange with no bindings, so only then is its existence checked,
    and the vhost's only when that fails: a missing vhost is named as such.
    """
    client, vhost, exchange = session.client, session.vhost, session.exchange
    with naming_a_missing_vhost(client, vhost):
        raw = client.list_bindings_from(vhost, exchange)
        if not raw:
            tenant_exchange(client, vhost, exchange)
    bindings = parse_all(Binding, raw, f"the bindings of exchange {exchange!r}")
    return [binding for binding in bindings if binding.destination_type == "queue"]


def tenant_exchange(client: ManagementClient, vhost: str, exchange: str) -> dict:
    """The tenant exchange's definition and statistics; a missing one is named as such."""
    try:
        return client.get_exchange(vhost, exchange)
    except NotFound:
        raise TenantExchangeMissing(
            f"The tenant exchange {exchange!r} does not exist in vhost {vhost!r}, so there are "
            "no tenant queues to show: check WARREN_TENANT_EXCHANGE and WARREN_VHOST."
        ) from None


class Topology(NamedTuple):
    vhost: str
    exchange: str
    bindings: list[Binding]
    queues: dict[str, QueueInfo]
    # Dead-letter exchange -> routing key -> the queue it routes that key to.
    dead_letter_routes: dict[str, dict[str, str]]


def fetch_topology(session: Session, statistics: bool = True) -> Topology:
    """The tenant bindings, the queues and where dead letters go; without `statistics`, the
    queues' settings only (no counts nor rates), which the broker lists several times faster."""
    client, vhost = session.client, session.vhost
    bindings = tenant_bindings(session)
    columns = QUEUE_COLUMNS if statistics else SETTINGS_COLUMNS
    listed = client.list_queues_in(vhost, columns, statistics)
    queues = {queue.name: queue for queue in parse_all(QueueInfo, listed, "the queue list")}
    bound = {binding.destination for binding in bindings}
    exchanges = {
        str(arguments[DLX])
        for name in bound & queues.keys()
        if (arguments := queues[name].effective_arguments).get(DLX)
    }
    routes = {dlx: _first_queue_by_key(client, vhost, dlx) for dlx in sorted(exchanges)}
    return Topology(vhost, session.exchange, bindings, queues, routes)


def work_queues(session: Session) -> tuple[dict[str, list[str]], set[str]]:
    """The tenant queues (with their tenant ids) and the queues their dead letters go to: the
    queues whose consumers do the tenants' work. A vhost without the tenant exchange has
    none."""
    try:
        topology = fetch_topology(session, statistics=False)
    except TenantExchangeMissing:
        return {}, set()
    rows = build_rows(topology.bindings, topology.queues)
    attach_dead_letters(rows, topology.queues, topology.dead_letter_routes)
    tenants = {queue: sorted(ids) for queue, ids in tenants_by_queue(topology.bindings).items()}
    return tenants, {row.dead_letter_queue for row in rows if row.dead_letter_queue}


def fetch_overview(session: Session) -> Overview:
    """The overview in one go: topology and counts from the management API."""
    return overview_of(fetch_topology(session))


def overview_of(topology: Topology, counts: dict[str, QueueCounts] | None = None) -> Overview:
    """The overview of `topology`, with `counts` (by queue name) instead of its own where given."""
    queues = _with_counts(topology, counts) if counts else topology.queues
    rows = build_rows(topology.bindings, queues)
    attach_dead_letters(rows, queues, topology.dead_letter_routes)
    return Overview(
        vhost=topology.vhost,
        exchange=topology.exchange,
        rows=rows,
        totals=totals_of(rows, queues),
        fetched_at=datetime.now(UTC),
        counts_from="metrics" if counts else "management",
    )


def _with_counts(topology: Topology, counts: dict[str, QueueCounts]) -> dict[str, QueueInfo]:
    """The queues, those bound or receiving dead letters with the fresher counts (a queue the
    metrics do not list keeps its listed counts)."""
    used = {binding.destination for binding in topology.bindings} | {
        queue for routes in topology.dead_letter_routes.values() for queue in routes.values()
    }
    queues = dict(topology.queues)
    for name in used & queues.keys() & counts.keys():
        fresh = counts[name]
        queues[name] = queues[name].model_copy(
            update={
                "messages_ready": fresh.ready,
                "messages_unacknowledged": fresh.unacked,
                "messages": fresh.total,
                "consumers": fresh.consumers,
                # The listing's head, while the fresher counts say it may still be there.
                "head_message_timestamp": queues[name].head_message_timestamp
                if fresh.ready
                else None,
            }
        )
    return queues


class OverviewReader:
    """Overviews for a poll: counts every time, from the broker's metrics endpoint when it
    answers for this broker; the topology (bindings, settings, rates) when a queue appeared or
    went, else at most every WARREN_TOPOLOGY_SECONDS. Without a metrics endpoint, every read
    lists everything from the management API."""

    def __init__(self, session: Session):
        self.session = session
        self.metrics = session.metrics
        self._answered = False
        self._cluster: str | None = None
        self._topology: Topology | None = None
        self._listed_at = 0.0

    def read(self) -> Overview:
        due = time.monotonic() - self._listed_at >= self.session.settings.topology_seconds
        if self.metrics is None or self._topology is None or due:
            return self._listed()
        try:
            answer = self.metrics.read(self.session.vhost)
        except BrokerError:
            if not self._answered:
                self.metrics = None  # no endpoint where `auto` looked: the management API it is
            return self._listed()
        if answer.cluster != self._cluster:
            self.metrics = None  # another broker's endpoint: never mix its counts in
            return self._listed()
        self._answered = True
        if answer.counts.keys() != self._topology.queues.keys():
            return self._listed()  # a queue appeared or went: it may be a tenant's
        return overview_of(self._topology, answer.counts | self._exact(answer.counts))

    def _listed(self) -> Overview:
        self._topology = fetch_topology(self.session)
        if self.metrics is not None and self._cluster is None:
            self._cluster = self.session.client.cluster_name()
        self._listed_at = time.monotonic()
        overview = overview_of(self._topology, self._exact({}) or None)
        overview.counts_from = "management"
        return overview

    def _exact(self, counts: dict[str, QueueCounts]) -> dict[str, QueueCounts]:
        """Counts over AMQP of the queues an action just changed, which the broker's statistics
        have not caught up with yet (unacked has no AMQP count: the latest statistics')."""
        exact = {}
        for name in set(self.session.recently_changed()) & self._topology.queues.keys():
            listed = self._topology.queues[name]
            unacked = counts[name].unacked if name in counts else listed.messages_unacknowledged
            try:
                ready, consumers = self.session.queue_counts(name)
            except NotFound:
                continue
            exact[name] = QueueCounts(ready, unacked, ready + unacked, consumers)
        return exact


def tenants_by_queue(bindings: list[Binding]) -> dict[str, set[str]]:
    """Queue name -> the tenant ids (routing keys) it is bound under."""
    tenants: dict[str, set[str]] = defaultdict(set)
    for binding in bindings:
        tenants[binding.destination].add(binding.routing_key)
    return tenants


def build_rows(bindings: list[Binding], queues: dict[str, QueueInfo]) -> list[TenantRow]:
    """One row per (tenant id, queue), most backed-up first.

    A binding whose queue vanished between the two requests is skipped: it has no counts.
    """
    tenants_of_queue = tenants_by_queue(bindings)
    rows = [
        _row(tenant, queues[queue_name], sorted(tenants - {tenant}))
        for queue_name, tenants in tenants_of_queue.items()
        if queue_name in queues
        for tenant in tenants
    ]
    return sorted(rows, key=lambda row: (-row.ready, -row.total, row.tenant, row.queue))


def attach_dead_letters(
    rows: list[TenantRow], queues: dict[str, QueueInfo], routes: dict[str, dict[str, str]]
) -> None:
    """Fill in each row's dead-letter queue and its message count.

    Messages rejected or expired in a tenant queue go to its dead-letter exchange (argument or
    policy) with its dead-letter routing key (else their own routing key: the tenant id). The
    dead-letter queue is the queue that exchange routes that key to (`routes`, by exact
    routing-key match: direct exchanges); the default exchange routes a key to the queue of
    that name.
    """
    for row in rows:
        arguments = queues[row.queue].effective_arguments
        if DLX not in arguments:
            continue
        exchange, key = str(arguments[DLX]), str(arguments.get(DLRK, row.tenant))
        target = key if exchange == "" else routes.get(exchange, {}).get(key)
        if target in queues:
            row.dead_letter_queue, row.dead_letters = target, queues[target].messages


def _first_queue_by_key(client: ManagementClient, vhost: str, exchange: str) -> dict[str, str]:
    try:
        raw = client.list_bindings_from(vhost, exchange)
    except NotFound:
        return {}
    routes: dict[str, str] = {}
    for binding in sorted(
        parse_all(Binding, raw, f"the bindings of exchange {exchange!r}"),
        key=lambda binding: binding.destination,
    ):
        if binding.destination_type == "queue":
            routes.setdefault(binding.routing_key, binding.destination)
    return routes


def _row(tenant: str, queue: QueueInfo, others: list[str]) -> TenantRow:
    stats = queue.message_stats
    return TenantRow(
        tenant=tenant,
        vhost=queue.vhost,
        queue=queue.name,
        ready=queue.messages_ready,
        unacked=queue.messages_unacknowledged,
        total=queue.messages,
        consumers=queue.consumers,
        publish_rate=_rate(stats and stats.publish_details),
        deliver_rate=_rate(stats and stats.deliver_get_details),
        ack_rate=_rate(stats and stats.ack_details),
        consumer_capacity=queue.capacity,
        queue_type=queue.type,
        state=queue.state,
        shares_queue_with=others,
        acks=stats.ack if stats else 0,
        redeliveries=stats.redeliver if stats else 0,
        head_timestamp=queue.head_message_timestamp if queue.messages_ready else None,
        counted=queue.counted,
    )


def _rate(details) -> float | None:
    return details.rate if details is not None else None


def totals_of(rows: list[TenantRow], queues: dict[str, QueueInfo]) -> Totals:
    distinct = [queues[name] for name in {row.queue for row in rows}]
    return Totals(
        tenants=len({row.tenant for row in rows}),
        queues=len(distinct),
        ready=sum(queue.messages_ready for queue in distinct),
        unacked=sum(queue.messages_unacknowledged for queue in distinct),
        total=sum(queue.messages for queue in distinct),
        consumers=sum(queue.consumers for queue in distinct),
    )
