"""The tenant overview: queues bound to the tenant exchange, keyed by routing key = tenant id.

An overview joins three reads that cost the broker very differently at thousands of queues
(measured at 10,000: see the README's *Performance*):
- the topology: the tenant bindings, the queues' settings (type, arguments, policy) and where
  dead letters go, listed without statistics (`disable_stats`), which the broker answers
  several times faster;
- the counts (ready, unacked, consumers): from the broker's metrics endpoint when it answers
  for this broker, a fraction of a second; else from the management API's queue list;
- the statistics (rates, ack and redelivery counters, the oldest message's timestamp, consumer
  capacity): only the management API's full queue list has them, and it is the slow part.
The one-shot reads the statistics where they are cheap (`statistics=None`); the console's poll
(`OverviewReader`) shows its first page without them and lists them in the background.
"""

import operator
import time
from collections import defaultdict
from collections.abc import Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import NamedTuple, Protocol

from dashboard.broker.management import ManagementClient, naming_a_missing_vhost
from dashboard.broker.metrics import QueueCounts
from dashboard.broker.models import (
    DEAD_LETTER_KEYS,
    Binding,
    ListedQueue,
    parse_each,
)
from dashboard.broker.session import Session
from dashboard.errors import BrokerError, NotFound, TenantExchangeMissing
from dashboard.reads.models import Overview, TenantRow, Totals
from dashboard.reads.queue_detail import queue_settings

# Not `vhost`: the listing is of one, and it is the overview's (a tenth of the settings
# listing's bytes and of the broker's time for it at 10,000 queues).
QUEUE_COLUMNS = (
    "name",
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
# A listing without statistics: the broker sends no effective policy then, only its name.
SETTINGS_COLUMNS = ("name", "type", "state", "arguments", "policy")
COUNT_COLUMNS = ("name", "messages_ready", "messages_unacknowledged", "messages", "consumers")
DLX = "x-dead-letter-exchange"
DLRK = "x-dead-letter-routing-key"
# Requests of one read that go out at once.
PARALLEL = 4


def tenant_bindings(session: Session) -> list[Binding]:
    """The tenant exchange's bindings to queues (exchange-to-exchange bindings are not tenants).

    The broker answers a missing exchange with no bindings, so only then is its existence checked,
    and the vhost's only when that fails: a missing vhost is named as such.
    """
    client, vhost, exchange = session.client, session.vhost, session.exchange
    with naming_a_missing_vhost(client, vhost):
        bindings = _bindings_from(client, vhost, exchange)
        if not bindings:
            tenant_exchange(client, vhost, exchange)
    return [binding for binding in bindings if binding.destination_type == "queue"]


def _bindings_from(client: ManagementClient, vhost: str, exchange: str) -> list[Binding]:
    what = f"the bindings of exchange {exchange!r}"
    return client.list_bindings_from(vhost, exchange, parse_each(Binding, what))


def tenant_exchange(client: ManagementClient, vhost: str, exchange: str) -> dict:
    """The tenant exchange's definition and statistics; a missing one is named as such."""
    try:
        return client.get_exchange(vhost, exchange)
    except NotFound:
        raise TenantExchangeMissing(
            f"The tenant exchange {exchange!r} does not exist in vhost {vhost!r}, so there are "
            "no tenant queues to show: check WARREN_TENANT_EXCHANGE and WARREN_VHOST."
        ) from None


class Place(NamedTuple):
    """Where a tenant row sits in the topology: what stays the same from one refresh to the
    next."""

    tenant: str
    vhost: str
    queue: ListedQueue
    # Other tenant ids bound to the same queue.
    others: list[str]
    dead_letter_queue: str | None


@dataclass(frozen=True)
class Topology:
    vhost: str
    exchange: str
    # Queue name -> the tenant ids it is bound under, sorted (the bindings themselves are not
    # kept: a model each, 50 MB at 50,000; nor sets: a set of one took 200 bytes, a tuple 48).
    tenants: dict[str, tuple[str, ...]]
    queues: dict[str, ListedQueue]
    # Dead-letter exchange -> routing key -> the queue it routes that key to.
    dead_letter_routes: dict[str, dict[str, str]]
    # Whether `queues` carry counts and statistics, or their settings only.
    statistics: bool

    @cached_property
    def places(self) -> list[Place]:
        """One place per (tenant id, queue), worked out once per listing: a refresh only lays
        counts over them. A binding whose queue vanished between the two requests has none."""
        return [
            Place(
                tenant,
                self.vhost,
                queue,
                [other for other in tenants if other != tenant],
                self._dead_letter_queue(queue, tenant),
            )
            for name, tenants in self.tenants.items()
            if (queue := self.queues.get(name)) is not None
            for tenant in tenants
        ]

    @cached_property
    def placed_queues(self) -> list[str]:
        """The queues that have a place, each once: what the totals sum, the same on every
        refresh of this listing."""
        return list({place.queue.name for place in self.places})

    @cached_property
    def placed_tenants(self) -> int:
        """How many tenant ids the placed queues are bound under."""
        return len({place.tenant for place in self.places})

    def _dead_letter_queue(self, queue: ListedQueue, tenant: str) -> str | None:
        """Messages rejected or expired in a tenant queue go to its dead-letter exchange
        (argument or policy) with its dead-letter routing key (else their own routing key: the
        tenant id). The dead-letter queue is the queue that exchange routes that key to (by
        exact routing-key match: direct exchanges); the default exchange routes a key to the
        queue of that name."""
        exchange = queue.effective(DLX)
        if exchange is None:
            return None
        key = queue.effective(DLRK)
        exchange, key = str(exchange), tenant if key is None else str(key)
        target = key if exchange == "" else self.dead_letter_routes.get(exchange, {}).get(key)
        return target if target in self.queues else None


def fetch_topology(session: Session, statistics: bool = True) -> Topology:
    """The tenant bindings, the queues and where dead letters go, asked at once; without
    `statistics`, the queues' settings only (no counts nor rates), which the broker lists
    several times faster."""
    client, vhost = session.client, session.vhost
    columns = QUEUE_COLUMNS if statistics else SETTINGS_COLUMNS
    with ThreadPoolExecutor(PARALLEL) as pool:
        listing = pool.submit(client.list_queues_in, vhost, columns, statistics, _LISTED_QUEUE)
        bindings = tenant_bindings(session)
        queues = {queue.name: queue for queue in listing.result()}
        bound = {binding.destination for binding in bindings} & queues.keys()
        if not statistics:
            _fill_in_policies(session, pool, [queues[name] for name in bound])
        exchanges = sorted(
            {str(exchange) for name in bound if (exchange := queues[name].effective(DLX))}
        )
        found = pool.map(lambda dlx: _first_queue_by_key(client, vhost, dlx), exchanges)
        routes = dict(zip(exchanges, found, strict=True))
    return Topology(vhost, session.exchange, tenants_by_queue(bindings), queues, routes, statistics)


_LISTED_QUEUE = parse_each(ListedQueue, "the queue list")


def _fill_in_policies(
    session: Session, pool: ThreadPoolExecutor, queues: list[ListedQueue]
) -> None:
    """Where each policy sends its queues' dead letters, read from one queue per policy (a
    listing without statistics names a queue's policy but not its definition)."""
    by_policy: dict[str, list[ListedQueue]] = defaultdict(list)
    for queue in queues:
        if queue.policy:
            by_policy[queue.policy].append(queue)

    def dead_letter_keys(members: list[ListedQueue]) -> dict | None:
        try:
            definition = queue_settings(session, members[0].name).effective_policy_definition
        except NotFound:
            return None  # gone since the listing
        return {key: definition[key] for key in DEAD_LETTER_KEYS if key in definition} or None

    for members, keys in zip(
        by_policy.values(), pool.map(dead_letter_keys, by_policy.values()), strict=True
    ):
        for queue in members:
            queue.dead_letter_policy = keys


def fetch_counts(session: Session) -> tuple[dict[str, QueueCounts], str]:
    """Every queue's counts in the vhost, and where they came from: the metrics endpoint when
    it answers for this broker, else the management API's queue list (slower, same numbers)."""
    if session.metrics is not None:
        try:
            return metric_counts(session), "metrics"
        except BrokerError:
            pass
    listed = session.client.list_queues_in(session.vhost, COUNT_COLUMNS)
    # A new queue the broker has not counted yet has no counts; a queue that is down, not all.
    return {
        raw["name"]: QueueCounts(*(raw.get(count, 0) for count in COUNT_COLUMNS[1:]))
        for raw in listed
        if "messages" in raw
    }, "management"


class ForeignEndpoint(BrokerError):
    """The metrics endpoint names another cluster than the management API: never mix its
    counts in."""


def metric_counts(session: Session) -> dict[str, QueueCounts]:
    """The metrics endpoint's counts, where it names the same cluster as the management API
    (asked at the same time, the first time)."""
    with ThreadPoolExecutor(1) as pool:
        cluster = pool.submit(session.cluster_name)
        answer = session.metrics.read(session.vhost)
        if answer.cluster != cluster.result():
            raise ForeignEndpoint(
                f"The metrics endpoint at {session.metrics.url} answers for another broker."
            )
    return answer.counts


def work_queues(session: Session) -> tuple[dict[str, list[str]], set[str]]:
    """The tenant queues (with their tenant ids) and the queues their dead letters go to: the
    queues whose consumers do the tenants' work. A vhost without the tenant exchange has
    none."""
    try:
        topology = fetch_topology(session, statistics=False)
    except TenantExchangeMissing:
        return {}, set()
    tenants = {queue: list(ids) for queue, ids in topology.tenants.items()}
    return tenants, {place.dead_letter_queue for place in topology.places} - {None}


class TopologyStore(Protocol):
    """Where listings are kept between processes (`reads/kept_topology.py`)."""

    def load(self, vhost: str, exchange: str) -> "Topology | None": ...

    def keep(self, topology: "Topology", previous: "Topology | None" = None) -> None: ...


def list_topology(
    session: Session,
    statistics: bool = True,
    kept: TopologyStore | None = None,
    previous: Topology | None = None,
) -> Topology:
    """`fetch_topology`, kept in `kept` for the next process (`previous`: the listing before
    it, whose settings need not be written again)."""
    topology = fetch_topology(session, statistics)
    if kept is not None:
        kept.keep(topology, previous)
    return topology


def fetch_overview(
    session: Session, statistics: bool | None = True, kept: TopologyStore | None = None
) -> Overview:
    """The overview in one go. With `statistics`, everything from the management API's full
    queue list; without, counts only (metrics endpoint, else a list of counts only) over the
    topology: a listing `kept` holds whose queues the counts name, else one listed at the same
    time; None: the statistics too where the vhost has at most WARREN_STATISTICS_UP_TO queues."""
    if statistics:
        return overview_of(list_topology(session, kept=kept))
    with ThreadPoolExecutor(1) as pool:
        counting = pool.submit(fetch_counts, session)
        stored = kept.load(session.vhost, session.exchange) if kept is not None else None
        topology = stored or list_topology(session, False, kept)
        _ = topology.places  # laid out while the counts are on their way
        counts, source = counting.result()
    if stored is not None and counts.keys() != stored.queues.keys():
        topology = list_topology(session, False, kept)  # a queue appeared or went since
    if statistics is None and len(topology.queues) <= session.settings.statistics_up_to:
        topology = list_topology(session, kept=kept)
    return overview_of(topology, counts, source)


def overview_of(
    topology: Topology,
    counts: dict[str, QueueCounts] | None = None,
    counts_from: str = "management",
    statistics: "Statistics | None" = None,
    last: "LastRows | None" = None,
) -> Overview:
    """The overview of `topology`, with `counts` (by queue name) over its own where given and
    the rates and counters of `statistics` (by default the topology's own, if it has them);
    with `last`, the rows of the last overview whose inputs stood still are reused."""
    now = datetime.now(UTC)
    if statistics is None and topology.statistics:
        statistics = Statistics(topology.queues, now)
    fresh = counts or {}
    counted = _counts_of(topology.queues, fresh)
    cells = statistics.cells if statistics else {}
    rows = build_rows(topology.places, counted, cells, fresh.keys(), last)
    return Overview(
        vhost=topology.vhost,
        exchange=topology.exchange,
        rows=rows,
        totals=totals_of(topology, counted),
        fetched_at=now,
        counts_from=counts_from if counts else "management",
        statistics_at=statistics.at if statistics else None,
    )


class Cells(NamedTuple):
    """What a tenant row takes from a statistics listing, worked out once per listing: a poll
    at scale lays new counts over the same listing for WARREN_TOPOLOGY_SECONDS."""

    publish_rate: float | None
    deliver_rate: float | None
    ack_rate: float | None
    consumer_capacity: float | None
    acks: int | None
    redeliveries: int | None
    head_timestamp: float | None
    counted: bool


# A queue the statistics were not read for: no rates nor counters known (None, not 0).
NO_STATISTICS = Cells(None, None, None, None, None, None, None, False)


@dataclass
class Statistics:
    """A listing with statistics (queues by name), and when it was made."""

    queues: dict[str, ListedQueue]
    at: datetime

    @cached_property
    def cells(self) -> dict[str, Cells]:
        return {name: _cells(queue) for name, queue in self.queues.items()}


def _cells(queue: ListedQueue) -> Cells:
    stats = queue.message_stats
    if stats is None:
        return Cells(
            None, None, None, queue.capacity, 0, 0, queue.head_message_timestamp, queue.counted
        )
    return Cells(
        _rate(stats.publish_details),
        _rate(stats.deliver_get_details),
        _rate(stats.ack_details),
        queue.capacity,
        stats.ack,
        stats.redeliver,
        queue.head_message_timestamp,
        queue.counted,
    )


def _counts_of(
    queues: dict[str, ListedQueue], counts: dict[str, QueueCounts]
) -> dict[str, QueueCounts]:
    """Each queue's counts: `counts` where they have it, else the listing's own (and `counts`'
    other queues: the reads look only up)."""
    listed = (queues[name] for name in queues.keys() - counts.keys())
    return counts | {
        queue.name: QueueCounts(
            queue.messages_ready, queue.messages_unacknowledged, queue.messages, queue.consumers
        )
        for queue in listed
    }


class OverviewReader:
    """Overviews for a poll. With a metrics endpoint that answers for this broker, the first
    read takes the topology `kept` holds where the counts name its queues, else lists it
    without statistics while it reads the counts, so that a first page at scale (above
    WARREN_STATISTICS_UP_TO queues) does not wait for the broker's slow part; each later read
    lays fresh counts over the topology, lists it again when a queue appeared or went or an
    action changed the bindings (at scale without statistics), and lists the statistics when
    due: on the second read, then every WARREN_TOPOLOGY_SECONDS, in the poll's background.
    Every listing is kept in `kept` for other processes.
    Without the endpoint, every read lists everything with statistics (the counts need them)."""

    def __init__(self, session: Session, kept: TopologyStore | None = None):
        self.session = session
        self.kept = kept
        self.metrics = session.metrics
        self._answered = False
        self._topology: Topology | None = None
        # When (`time.monotonic`) the topology held was listed, or taken from `kept`.
        self._topology_at = 0.0
        self._statistics: Statistics | None = None
        self._listed_at = 0.0
        self._last = LastRows()

    def read(self) -> Overview:
        if self.metrics is None:
            return self._listed()
        with ThreadPoolExecutor(1) as pool:
            first = self._topology is None
            stored = self._stored() if first else None
            listing = pool.submit(self._list, False) if first and stored is None else None
            counts = self._metric_counts()
            if counts is None:
                return self._listed()
            if listing is not None:
                listing.result()
        cheap = len(self._topology.queues) <= self.session.settings.statistics_up_to
        # A queue appeared or went, or an action changed the bindings.
        changed = (
            counts.keys() != self._topology.queues.keys()
            or self.session.topology_changed_at() >= self._topology_at
        )
        if (cheap and changed) or ((cheap or not first) and self._statistics_due()):
            self._list_statistics()
        elif changed:
            self._list(statistics=False)
        fresh = counts | self._exact(counts)
        return overview_of(self._topology, fresh, "metrics", self._statistics, self._last)

    def _stored(self) -> Topology | None:
        if self.kept is None:
            return None
        self._topology_at = time.monotonic()
        self._topology = self.kept.load(self.session.vhost, self.session.exchange)
        return self._topology

    def _list(self, statistics: bool) -> Topology:
        self._topology_at = time.monotonic()
        self._topology = list_topology(self.session, statistics, self.kept, self._topology)
        return self._topology

    def _metric_counts(self) -> dict[str, QueueCounts] | None:
        """The endpoint's counts; None, and the endpoint given up, where it is another
        broker's or where `auto` found none (a later failure is only this read's)."""
        try:
            counts = metric_counts(self.session)
        except ForeignEndpoint:
            self.metrics = None
            return None
        except BrokerError:
            if not self._answered:
                self.metrics = None
            return None
        self._answered = True
        return counts

    def _statistics_due(self) -> bool:
        elapsed = time.monotonic() - self._listed_at
        return self._statistics is None or elapsed >= self.session.settings.topology_seconds

    def _list_statistics(self) -> Topology:
        # Dated at its start: no count in it is newer (a silence is proven up to there only).
        started = datetime.now(UTC)
        topology = self._list(statistics=True)
        self._statistics = Statistics(topology.queues, started)
        self._listed_at = time.monotonic()
        return topology

    def _listed(self) -> Overview:
        topology = self._list_statistics()
        exact = self._exact({})
        return overview_of(topology, exact or None, statistics=self._statistics, last=self._last)

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


def tenants_by_queue(bindings: list[Binding]) -> dict[str, tuple[str, ...]]:
    """Queue name -> the tenant ids (routing keys) it is bound under, sorted."""
    tenants: dict[str, set[str]] = defaultdict(set)
    for binding in bindings:
        tenants[binding.destination].add(binding.routing_key)
    return {queue: tuple(sorted(ids)) for queue, ids in tenants.items()}


@dataclass
class LastRows:
    """A poll's rows, by place, with the inputs each was built from: the next poll of the same
    topology builds again only the rows whose inputs changed. The metrics parser keeps a
    queue's counts object while its gauges stand, and a listing's cells are the same objects
    for the listing, so at 100,000 queues whose counts mostly stand a poll builds few rows (and
    sorts none when it builds none). A reused row is the same object in both overviews: the
    flags and wait that `reads/stuck.py` writes on it are brought up to date in place."""

    places: list[Place] | None = None
    inputs: list[tuple] = field(default_factory=list)
    rows: list[TenantRow] = field(default_factory=list)
    ordered: list[TenantRow] = field(default_factory=list)


def build_rows(
    places: list[Place],
    counts: dict[str, QueueCounts],
    statistics: dict[str, Cells],
    counted: Set[str] = frozenset(),
    last: LastRows | None = None,
) -> list[TenantRow]:
    """One row per place, most backed-up first; rates and counters from `statistics` (None
    where it lacks the queue). The queues of `counted` were counted by the broker (a fresh
    source listed them), the others only if their listing says so."""
    reusable = last is not None and last.places is places
    inputs = [_inputs_of(place, counts, statistics, counted) for place in places]
    if reusable:
        rows = [
            kept if before == now else _row(place, *now)
            for place, now, before, kept in zip(places, inputs, last.inputs, last.rows, strict=True)
        ]
    else:
        rows = [_row(place, *now) for place, now in zip(places, inputs, strict=True)]
    if reusable and all(map(operator.is_, rows, last.rows)):
        ordered = list(last.ordered)
    else:
        ordered = sorted(rows, key=lambda row: (-row.ready, -row.total, row.tenant, row.queue))
    if last is not None:
        last.places, last.inputs, last.rows, last.ordered = places, inputs, rows, ordered
    return ordered


def _inputs_of(
    place: Place, counts: dict[str, QueueCounts], statistics: dict[str, Cells], counted: Set[str]
) -> tuple[QueueCounts, QueueCounts | None, Cells, bool]:
    """What a place's row is built from: its queue's counts, its dead-letter queue's, its
    statistics' cells, and whether a fresh source counted it."""
    name, dead_letter_queue = place.queue.name, place.dead_letter_queue
    return (
        counts[name],
        counts[dead_letter_queue] if dead_letter_queue else None,
        statistics.get(name, NO_STATISTICS),
        name in counted,
    )


def _first_queue_by_key(client: ManagementClient, vhost: str, exchange: str) -> dict[str, str]:
    try:
        bindings = _bindings_from(client, vhost, exchange)
    except NotFound:
        return {}
    routes: dict[str, str] = {}
    for binding in sorted(bindings, key=lambda binding: binding.destination):
        if binding.destination_type == "queue":
            routes.setdefault(binding.routing_key, binding.destination)
    return routes


def _row(
    place: Place,
    counts: QueueCounts,
    dead_letter_counts: QueueCounts | None,
    cells: Cells,
    counted: bool,
) -> TenantRow:
    queue = place.queue
    ready, unacked, total, consumers = counts
    return TenantRow(
        tenant=place.tenant,
        vhost=place.vhost,
        queue=queue.name,
        ready=ready,
        unacked=unacked,
        total=total,
        consumers=consumers,
        publish_rate=cells.publish_rate,
        deliver_rate=cells.deliver_rate,
        ack_rate=cells.ack_rate,
        consumer_capacity=cells.consumer_capacity,
        queue_type=queue.type,
        state=queue.state,
        shares_queue_with=place.others,
        dead_letter_queue=place.dead_letter_queue,
        dead_letters=dead_letter_counts.total if dead_letter_counts else None,
        acks=cells.acks,
        redeliveries=cells.redeliveries,
        # The listing's head, while the counts say it may still be there.
        head_timestamp=cells.head_timestamp if ready else None,
        counted=counted or queue.counted or cells.counted,
    )


def _rate(details) -> float | None:
    return details.rate if details is not None else None


def totals_of(topology: Topology, counts: dict[str, QueueCounts]) -> Totals:
    distinct = [counts[name] for name in topology.placed_queues]
    # Each count summed over the queues at once (zip in C): this runs on every poll.
    sums = map(sum, zip(*distinct, strict=True)) if distinct else [0] * 4
    ready, unacked, total, consumers = sums
    return Totals(
        tenants=topology.placed_tenants,
        queues=len(distinct),
        ready=ready,
        unacked=unacked,
        total=total,
        consumers=consumers,
    )
