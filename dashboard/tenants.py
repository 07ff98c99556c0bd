"""The tenant overview: queues bound to the tenant exchange, keyed by routing key = tenant id."""

from collections import defaultdict
from datetime import UTC, datetime

from dashboard.errors import NotFound, TenantExchangeMissing
from dashboard.management import ManagementClient
from dashboard.models import Binding, Overview, QueueInfo, TenantRow, Totals, parse_all

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
    "arguments",
    "effective_policy_definition",
)
DLX = "x-dead-letter-exchange"
DLRK = "x-dead-letter-routing-key"


def tenant_bindings(client: ManagementClient, vhost: str, exchange: str) -> list[Binding]:
    """The exchange's bindings to queues (exchange-to-exchange bindings are not tenants).

    The broker answers a missing exchange with no bindings, so only then is its existence checked.
    """
    raw = client.list_bindings_from(vhost, exchange)
    if not raw:
        _require_exchange(client, vhost, exchange)
    bindings = parse_all(Binding, raw, f"the bindings of exchange {exchange!r}")
    return [binding for binding in bindings if binding.destination_type == "queue"]


def _require_exchange(client: ManagementClient, vhost: str, exchange: str) -> None:
    try:
        client.get_exchange(vhost, exchange)
    except NotFound:
        raise TenantExchangeMissing(
            f"The tenant exchange {exchange!r} does not exist in vhost {vhost!r}, so there are "
            "no tenant queues to show: check WARREN_TENANT_EXCHANGE and WARREN_VHOST."
        ) from None


def fetch_overview(client: ManagementClient, vhost: str, exchange: str) -> Overview:
    bindings = tenant_bindings(client, vhost, exchange)
    listed = client.list_queues_in(vhost, QUEUE_COLUMNS)
    queues = {queue.name: queue for queue in parse_all(QueueInfo, listed, "the queue list")}
    rows = build_rows(bindings, queues)
    attach_dead_letters(client, vhost, rows, queues)
    return Overview(
        vhost=vhost,
        exchange=exchange,
        rows=rows,
        totals=totals_of(rows, queues),
        fetched_at=datetime.now(UTC),
    )


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
    client: ManagementClient, vhost: str, rows: list[TenantRow], queues: dict[str, QueueInfo]
) -> None:
    """Fill in each row's dead-letter queue and its message count.

    Messages rejected or expired in a tenant queue go to its dead-letter exchange (argument or
    policy) with its dead-letter routing key (else their own routing key: the tenant id). The
    dead-letter
    queue is the queue that exchange routes that key to, by exact routing-key match (direct
    exchanges; the default exchange routes a key to the queue of that name). Each dead-letter
    exchange's bindings are asked for once per refresh.
    """
    routes: dict[str, dict[str, str]] = {}
    for row in rows:
        arguments = queues[row.queue].effective_arguments
        if DLX not in arguments:
            continue
        exchange, key = str(arguments[DLX]), str(arguments.get(DLRK, row.tenant))
        if exchange == "":
            target = key
        else:
            if exchange not in routes:
                routes[exchange] = _first_queue_by_key(client, vhost, exchange)
            target = routes[exchange].get(key)
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
