"""A stand-in for one RabbitMQ 3.10 node at a size this machine's real broker cannot reach.

It answers the management API (`/api/...`) and the Prometheus plugin's `/metrics/detailed` for
N tenant queues (default 100,000) in vhost `/`: queue `q.tenant-NNNNNN` bound to direct exchange
`tenants` with routing key `tenant-NNNNNN`; every 10th queue dead-letters to `tenants.dlx`, which
routes each of those tenant ids to `q.dead`. Every odd-numbered queue has one consumer
(prefetch 1), on a channel of its own by default, ten channels to a connection (a pod named
`worker-NNNNN`); `consumers_per_channel` puts more on one channel. One policy applies to every
tenant queue. It is read-only: nothing can be changed, published or consumed.

The bodies have the shapes a real RabbitMQ 3.10.8 node (Debian's 3.10.8-1.1, Erlang 25.2.3,
started by `dashboard.local.rabbitmq.LocalBroker`) sent to every request Warren makes, recorded
through a logging proxy: the same keys in the same order, the same value types (`0` for an
unconsumed queue's capacity, `[]` for an object a `columns=` filter empties, `"live"` as the
state without statistics), gzip above 300 bytes as Cowboy sends it, the same 401 and 404
bodies. Counts are deterministic per queue (`counts_of`) and the same in the management API and
in the metrics text. The answers to Warren's polls (their columns taken from Warren's own
constants) are built once at `start()`; any other (path, query) is built on its first request
and kept (one holding broker samples, which move with time, for one sampling step only). The
server's own work per request is then a dict lookup and a socket write.

    with SyntheticBroker(100_000) as broker:
        broker.management_url, broker.metrics_url  # Warren asks <metrics_url>/metrics/detailed
        broker.requests_seen, broker.queries_seen, broker.late_builds, broker.totals

Run: .venv/bin/python bench/synthetic_broker.py [--tenants 100000]  (serves until Ctrl-C)
"""

import argparse
import base64
import json
import signal
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlencode

VERSION = "3.10.8"
ERLANG = "25.2.3"
NODE = "rabbit@localhost"
# A real node's default cluster name is its node name with the full host name: not the node's.
CLUSTER = "rabbit@synthetic.local"
CLUSTER_ID = "rabbitmq-cluster-id-c3ludGhldGljLWJyb2tlcg"
VHOST = "/"
EXCHANGE = "tenants"
DLX = "tenants.dlx"
DEAD_QUEUE = "q.dead"
USER, PASSWORD = "guest", "guest"
POLICY = "tenant-limits"
POLICY_DEFINITION = {"max-length": 100000, "overflow": "reject-publish"}
# Messages the tenant exchange dropped for want of a binding (its publish_in - publish_out).
DROPPED = 17
# Cowboy (the broker's HTTP server) gzips an answer of this many bytes or more.
GZIP_AT = 300
# Items encoded per json.dumps call: a listing of 100,000 never sits whole in memory as text.
CHUNK = 5000
RATES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8)
JSON_TYPE = "application/json"
METRICS_TYPE = "text/plain; version=0.0.4"
NOT_FOUND = b'{"error":"Object Not Found","reason":"Not Found"}'
LOGIN_FAILED = b'{"error":"not_authorized","reason":"Login failed"}'


class Counts(NamedTuple):
    ready: int
    unacked: int
    consumers: int


def counts_of(number: int) -> Counts:
    """Tenant queue `number`'s counts. Unacked messages need a consumer to hold them, so only
    consumed queues (odd numbers) have one: those that are also multiples of 3."""
    consumers = number % 2
    return Counts(number % 7, 1 if consumers and number % 3 == 0 else 0, consumers)


def tenant_id(number: int) -> str:
    return f"tenant-{number:06d}"


def queue_name(number: int) -> str:
    return f"q.{tenant_id(number)}"


def dead_letters(number: int) -> bool:
    return number % 10 == 0


def arguments_of(number: int | None) -> dict:
    """x-max-priority on every tenant queue, a dead-letter exchange on every 10th (sorted, as
    the broker sends them); none on the dead-letter queue (None)."""
    if number is None:
        return {}
    if dead_letters(number):
        return {"x-dead-letter-exchange": DLX, "x-max-priority": 10}
    return {"x-max-priority": 10}


# How much each queue's reductions grow per scrape (the amount does not matter to Warren: only
# that every such line differs).
REDUCTIONS_PER_SCRAPE = 5000


def reductions_of(number: int) -> int:
    return 100000 + number * 7 % 50000


# --- broker samples -------------------------------------------------------------------------


@dataclass
class Sampling:
    """What a request asked of the broker's samples: (age, step) in seconds, for message rates
    (`msg_rates_age`, `msg_rates_incr`) and for lengths (`lengths_age`, `lengths_incr`); and
    whether its answer holds any (then it is right for one step only)."""

    rates: tuple[int, int] | None
    lengths: tuple[int, int] | None
    now: float
    sampled: bool = False

    @classmethod
    def of(cls, params: dict[str, str]) -> "Sampling":
        return cls(_age(params, "msg_rates"), _age(params, "lengths"), time.time())

    @property
    def step(self) -> int | None:
        """How long an answer with samples stays right: its shortest step."""
        steps = [asked[1] for asked in (self.rates, self.lengths) if asked]
        return min(steps) if steps else None


def _age(params: dict[str, str], prefix: str) -> tuple[int, int] | None:
    try:
        age = int(params[f"{prefix}_age"])
        step = int(params.get(f"{prefix}_incr", "5"))
    except (KeyError, ValueError):
        return None
    return (age, step) if age > 0 and step > 0 else None


class Rate:
    """A `*_details` object. Plain it is `{"rate": r}`; asked with an age it carries the
    broker's samples, made only when the columns keep it (a channel listing of 50,000 with
    `message_stats.ack_details.rate` would otherwise build millions of samples to drop)."""

    __slots__ = ("count", "lengths", "rate")

    def __init__(self, count: int, rate: float = 0.0, lengths: bool = False):
        self.count, self.rate, self.lengths = count, rate, lengths

    def as_json(self, sampling: Sampling | None) -> dict:
        asked = sampling and (sampling.lengths if self.lengths else sampling.rates)
        if not asked:
            return {"rate": self.rate}
        age, step = asked
        sampling.sampled = True
        # The broker's newest message-rate sample is one step behind its newest length sample.
        newest = int(sampling.now) // step * step - (0 if self.lengths else step)
        points = [
            {"sample": max(0, round(self.count - self.rate * index * step)), "timestamp": at}
            for index, at in enumerate(
                range(newest * 1000, (newest - age - 1) * 1000, -step * 1000)
            )
        ]
        values = [point["sample"] for point in points]
        return {
            "avg": sum(values) / len(values),
            "avg_rate": (values[0] - values[-1]) / age,
            "rate": self.rate,
            "samples": points,
        }


def consumed(number: int) -> tuple[dict[str, int], Callable[[str], float]]:
    """A consumed tenant queue's message counters (in their order) and their rates."""
    ready, unacked, _ = counts_of(number)
    ack, redeliver = 10 * (number % 100), number % 4
    deliver = ack + unacked + redeliver
    counts = {
        "ack": ack, "deliver": deliver, "deliver_get": deliver, "deliver_no_ack": 0,
        "get": 0, "get_empty": 0, "get_no_ack": 0, "publish": ready + ack + unacked,
        "redeliver": redeliver,
    }  # fmt: skip
    return counts, flowing(rate_of(number))


def rate_of(number: int) -> float:
    """The rate a consumed queue's work flows at: 0 for every 10th, so some look stuck."""
    return RATES[(number // 2) % len(RATES)]


def flowing(rate: float) -> Callable[[str], float]:
    """Rates of a consumed queue or channel: its work flows at `rate`; nobody uses basic.get
    or auto-ack."""
    return lambda name: 0.0 if name.startswith("get") or "no_ack" in name else rate


CHANNEL_COUNTS = ("ack", "deliver", "deliver_get", "deliver_no_ack", "get", "get_empty")
CHANNEL_COUNTS += ("get_no_ack", "redeliver")


def rates(counts: dict[str, int], rate_for: Callable[[str], float]) -> dict[str, Any]:
    """A `message_stats` object: each count followed by its `_details`."""
    stats: dict[str, Any] = {}
    for name, count in counts.items():
        stats[name] = count
        stats[f"{name}_details"] = Rate(count, rate_for(name))
    return stats


# --- columns= -------------------------------------------------------------------------------


def column_tree(columns: str) -> dict:
    """`a.b,c` -> {"a": {"b": {}}, "c": {}}."""
    tree: dict = {}
    for column in columns.split(","):
        node = tree
        for part in column.split("."):
            node = node.setdefault(part, {})
    return tree


def pick(item: dict, tree: dict, sampling: Sampling | None) -> dict | list:
    """The broker's column filter: keys in their order, nested paths kept, and an object the
    filter empties sent as `[]` (an empty Erlang property list), as 3.10 does."""
    picked = {}
    for key, value in item.items():
        below = tree.get(key)
        if below is None:
            continue
        if below and isinstance(value, Rate):
            # Samples only when the filter keeps more than the rate: they would be dropped.
            value = value.as_json(sampling if below.keys() - {"rate"} else None)
        if below and isinstance(value, dict):
            value = pick(value, below, sampling)
        picked[key] = value
    return picked or []


def sorted_keys(item: dict) -> dict:
    """Listings send each object's keys sorted, nested objects too (a single GET may not)."""
    return {
        key: sorted_keys(value) if isinstance(value, dict) else value
        for key, value in sorted(item.items())
    }


# --- bodies ---------------------------------------------------------------------------------


class Body(NamedTuple):
    status: int
    content_type: str | None
    data: bytes
    gzipped: bool
    # time.monotonic() after which it is built again (samples move with the clock).
    expires: float = float("inf")
    headers: tuple[tuple[str, str], ...] = ()

    def plain(self) -> bytes:
        return zlib.decompress(self.data, 31) if self.gzipped else self.data


def body_of(chunks: Iterable[bytes], content_type: str = JSON_TYPE, status: int = 200) -> Body:
    """Chunks of one answer, gzipped as they come when the answer reaches GZIP_AT bytes."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: a gzip stream, Cowboy's level
    head, size, packed = [], 0, []
    for chunk in chunks:
        size += len(chunk)
        if size < GZIP_AT:
            head.append(chunk)
            continue
        if head:
            packed.append(compressor.compress(b"".join(head)))
            head = []
        packed.append(compressor.compress(chunk))
    if size < GZIP_AT:
        return Body(status, content_type, b"".join(head), gzipped=False)
    packed.append(compressor.flush())
    return Body(status, content_type, b"".join(packed), gzipped=True)


def encoder(sampling: Sampling | None) -> json.JSONEncoder:
    # Compact and UTF-8 like the broker's; a Rate left whole becomes its JSON here, lazily.
    return json.JSONEncoder(
        separators=(",", ":"),
        ensure_ascii=False,
        default=lambda value: value.as_json(sampling),
    )


def json_body(value: Any, sampling: Sampling | None = None) -> Body:
    return body_of([encoder(sampling).encode(value).encode()])


def listing_body(items: Iterator[dict], sampling: Sampling | None) -> Body:
    return body_of(_listing_chunks(items, encoder(sampling)))


def _listing_chunks(items: Iterator[dict], encoding: json.JSONEncoder) -> Iterator[bytes]:
    yield b"["
    first = True
    while batch := list(islice(items, CHUNK)):
        text = encoding.encode(batch)[1:-1]
        yield (text if first else "," + text).encode()
        first = False
    yield b"]"


class Missing(Exception):
    """The answer is not 200: a real node's 404 (or the odd other status it sends)."""

    def __init__(self, body: Body | None = None):
        self.body = body or Body(404, JSON_TYPE, NOT_FOUND, gzipped=False)


# --- the world ------------------------------------------------------------------------------


class Pods(NamedTuple):
    """Consumers on channels on connections. Consumer c consumes tenant queue 2c + 1."""

    consumers: int
    per_channel: int
    per_connection: int

    @property
    def channels(self) -> int:
        return -(-self.consumers // self.per_channel)

    @property
    def connections(self) -> int:
        return -(-self.channels // self.per_connection)

    def channel_of(self, number: int) -> int:
        return (number // 2) // self.per_channel

    def queues_on(self, channel: int) -> range:
        first = channel * self.per_channel
        return range(2 * first + 1, 2 * min(first + self.per_channel, self.consumers), 2)


def connection_name(connection: int) -> str:
    peer = f"10.1.{connection // 250 % 250}.{connection % 250 + 1}"
    return f"{peer}:{40000 + connection % 20000} -> 10.0.0.1:5672"


def channel_name(pods: Pods, channel: int) -> str:
    connection = channel // pods.per_connection
    return f"{connection_name(connection)} ({channel % pods.per_connection + 1})"


def iso(moment: float) -> str:
    """The broker's `idle_since` format: milliseconds and an explicit UTC offset."""
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


class World:
    """Every object of the broker, each built when asked from its number (nothing per queue is
    kept: 100,000 queues as dicts would take gigabytes)."""

    def __init__(self, tenants: int, per_channel: int, per_connection: int, port: int):
        self.tenants = tenants
        self.pods = Pods(tenants // 2, per_channel, per_connection)
        self.port = port
        self.started = time.time()
        self.totals = self._totals()
        # Answers of the metrics endpoint so far: a real queue's reductions grow between two
        # scrapes even while it stands still (its statistics timer runs), so every queue's
        # reductions line differs from one answer to the next.
        self.scrapes = 0

    # queues

    def queue_stats(self, number: int) -> dict | None:
        """A tenant queue's `message_stats`: none for a queue never published to, publishes
        only for one nobody consumes."""
        ready, _, consumers = counts_of(number)
        if not consumers:
            return rates({"publish": ready}, lambda _: 0.0) if ready else None
        return rates(*consumed(number))

    def queue(
        self,
        number: int | None,
        sampling: Sampling | None,
        single: bool = False,
        lean: bool = False,
    ) -> dict:
        """Tenant queue `number` (None: the dead-letter queue) as the full listing sends it;
        `single`: as `GET /api/queues/{vhost}/{name}` does, with its consumer; `lean`: without
        the HEAVY parts, for a column filter that drops them anyway."""
        dead = number is None
        ready, unacked, consumers = (
            (self.totals["dead_letters"], 0, 0) if dead else counts_of(number)
        )
        stats = None if dead else self.queue_stats(number)
        capacity = (1.0 if not unacked else 0.9876219498889801) if consumers else 0
        head = None
        if dead or (ready and number % 5 == 0):
            head = int(self.started) - 60 * (1 if dead else number % 30 + 1)
        item = {
            "arguments": arguments_of(number),
            "auto_delete": False,
            "backing_queue_status": None if lean else self._backing_queue(ready, unacked, dead),
            "consumer_capacity": capacity,
            "consumer_utilisation": capacity,
            "consumers": consumers,
            "durable": True,
            "effective_policy_definition": {} if dead else POLICY_DEFINITION,
            "exclusive": False,
            "exclusive_consumer_tag": None,
            "garbage_collection": None if lean else _garbage_collection(3 if dead else number % 20),
            "head_message_timestamp": head,
            "idle_since": None if lean else iso(self.started - (60 if dead else number % 3600)),
            "memory": 21184 if dead else 159584 + 8 * (ready + unacked),
            "message_bytes": 3 * (ready + unacked),
            "message_bytes_paged_out": 0,
            "message_bytes_persistent": 0,
            "message_bytes_ram": 3 * (ready + unacked),
            "message_bytes_ready": 3 * ready,
            "message_bytes_unacknowledged": 3 * unacked,
            "message_stats": stats,
            "messages": ready + unacked,
            "messages_details": Rate(ready + unacked, lengths=True),
            "messages_paged_out": 0,
            "messages_persistent": 0,
            "messages_ram": ready + unacked,
            "messages_ready": ready,
            "messages_ready_details": Rate(ready, lengths=True),
            "messages_ready_ram": ready,
            "messages_unacknowledged": unacked,
            "messages_unacknowledged_details": Rate(unacked, lengths=True),
            "messages_unacknowledged_ram": unacked,
            "name": DEAD_QUEUE if dead else queue_name(number),
            "node": NODE,
            "operator_policy": None,
            "policy": None if dead else POLICY,
            "recoverable_slaves": None,
            "reductions": 9954 if dead else reductions_of(number),
            "reductions_details": {"rate": 0.0},  # never sampled
            "single_active_consumer_tag": None,
            "state": "running",
            "type": "classic",
            "vhost": VHOST,
        }
        if stats is None:
            del item["message_stats"]  # absent until the queue's first message
        if not single:
            return item
        # A single queue also sends its consumers, deliveries and incoming (in that order).
        detail = {"consumer_details": [_as_detail(self.consumer(number))] if consumers else []}
        detail.update(sorted({**item, "deliveries": [], "incoming": []}.items()))
        return detail

    def _backing_queue(self, ready: int, unacked: int, dead: bool) -> dict:
        # A priority queue (x-max-priority) reports per-priority lengths; the plain one does not.
        status = {
            "avg_ack_egress_rate": 0.0,
            "avg_ack_ingress_rate": 0.0,
            "avg_egress_rate": 0.0,
            "avg_ingress_rate": 0.0,
            "delta": ["delta", "undefined", 0, 0, "undefined"]
            if dead
            else ["delta", "todo", "todo", "todo", "todo"],
            "len": ready,
            "mode": "default",
            "next_deliver_seq_id": unacked,
            "next_seq_id": ready + unacked,
            "priority_lengths": {**PRIORITY_LENGTHS, "0": ready},
            "q1": 0,
            "q2": 0,
            "q3": 0,
            "q4": ready,
            "target_ram_count": "infinity",
            "version": 11,
        }
        if dead:
            del status["priority_lengths"]
            status["version"] = 1
        return status

    def queue_settings(self, number: int | None) -> dict:
        """A queue as `disable_stats=true` lists it: no counts, state `live`, the name of its
        policy but not what the policy sets (no `effective_policy_definition`)."""
        item = {
            "arguments": arguments_of(number),
            "auto_delete": False,
            "durable": True,
            "exclusive": False,
            "name": DEAD_QUEUE if number is None else queue_name(number),
            "node": NODE,
            "policy": POLICY,
            "state": "live",
            "type": "classic",
            "vhost": VHOST,
        }
        if number is None:
            del item["policy"]  # only a queue a policy applies to has the key
        return item

    def queue_numbers(self) -> Iterator[int | None]:
        """In the broker's order, by name: `q.dead` sorts before `q.tenant-...`."""
        yield None
        yield from range(self.tenants)

    def find_queue(self, name: str) -> int | None:
        if name == DEAD_QUEUE:
            return None
        prefix = queue_name(0)[:-6]
        suffix = name.removeprefix(prefix)
        if suffix != name and len(suffix) == 6 and suffix.isdigit():
            number = int(suffix)
            if number < self.tenants:
                return number
        raise Missing

    # bindings and exchanges

    def bindings(self, source: str | None = None) -> Iterator[dict]:
        """Bindings by source, then destination: the default exchange's first."""
        if source in (None, ""):
            for number in self.queue_numbers():
                name = DEAD_QUEUE if number is None else queue_name(number)
                yield _binding("", name, name)
        if source in (None, EXCHANGE):
            for number in range(self.tenants):
                yield _binding(EXCHANGE, queue_name(number), tenant_id(number))
        if source in (None, DLX):
            for number in range(0, self.tenants, 10):
                yield _binding(DLX, DEAD_QUEUE, tenant_id(number))

    def exchanges(self) -> list[dict]:
        builtin = [
            ("", "direct", False), ("amq.direct", "direct", False),
            ("amq.fanout", "fanout", False), ("amq.headers", "headers", False),
            ("amq.match", "headers", False), ("amq.rabbitmq.trace", "topic", True),
            ("amq.topic", "topic", False),
        ]  # fmt: skip
        items = [
            _exchange(name, kind, internal, "rmq-internal") for name, kind, internal in builtin
        ]
        tenants = _exchange(EXCHANGE, "direct", False, USER)
        published = self.totals["published"]
        tenants["message_stats"] = rates(
            {"publish_in": published + DROPPED, "publish_out": published}, lambda _: 0.0
        )
        items += [tenants, _exchange(DLX, "direct", False, USER)]
        return [dict(sorted(item.items())) for item in items]

    def exchange(self, name: str) -> dict:
        for item in self.exchanges():
            if item["name"] == name:
                return dict(sorted({**item, "incoming": [], "outgoing": []}.items()))
        raise Missing

    # consumers, channels, connections

    def consumer(self, number: int) -> dict:
        channel = self.pods.channel_of(number)
        connection = channel // self.pods.per_connection
        peer = connection_name(connection).split(" ")[0]
        host, port = peer.rsplit(":", 1)
        return {
            "arguments": {},
            "ack_required": True,
            "active": True,
            "activity_status": "up",
            "channel_details": {
                "connection_name": connection_name(connection),
                "name": channel_name(self.pods, channel),
                "node": NODE,
                "number": channel % self.pods.per_connection + 1,
                "peer_host": host,
                "peer_port": int(port),
                "user": USER,
            },
            "consumer_tag": f"ctag{channel % self.pods.per_connection + 1}.{number:032x}",
            "exclusive": False,
            "prefetch_count": 1,
            "queue": {"name": queue_name(number), "vhost": VHOST},
        }

    def consumers(self) -> Iterator[dict]:
        for number in range(1, self.tenants, 2):
            yield self.consumer(number)

    def channel(self, channel: int) -> dict:
        queues = self.pods.queues_on(channel)
        counters = [consumed(number)[0] for number in queues]
        total = {name: sum(queue[name] for queue in counters) for name in CHANNEL_COUNTS}
        rate = sum(rate_of(number) for number in queues)
        connection = channel // self.pods.per_connection
        host, port = connection_name(connection).split(" ")[0].rsplit(":", 1)
        unacked = sum(counts_of(number).unacked for number in queues)
        return {
            "acks_uncommitted": 0,
            "confirm": False,
            "connection_details": {
                "name": connection_name(connection),
                "peer_host": host,
                "peer_port": int(port),
            },
            "consumer_count": len(queues),
            "garbage_collection": _garbage_collection(channel % 20),
            "global_prefetch_count": 0,
            "idle_since": iso(self.started - channel % 600),
            "message_stats": rates(total, flowing(rate)),
            "messages_unacknowledged": unacked,
            "messages_uncommitted": 0,
            "messages_unconfirmed": 0,
            "name": channel_name(self.pods, channel),
            "node": NODE,
            "number": channel % self.pods.per_connection + 1,
            "pending_raft_commands": 0,
            "prefetch_count": 1,
            "reductions": 2249 + channel % 5000,
            "reductions_details": {"rate": 0.0},  # never sampled
            "state": "running",
            "transactional": False,
            "user": USER,
            "user_who_performed_action": USER,
            "vhost": VHOST,
        }

    def channels(self) -> Iterator[dict]:
        for channel in range(self.pods.channels):
            yield self.channel(channel)

    def connection(self, connection: int) -> dict:
        name = connection_name(connection)
        host, port = name.split(" ")[0].rsplit(":", 1)
        first = connection * self.pods.per_connection
        channels = min(self.pods.per_connection, self.pods.channels - first)
        pod = f"worker-{connection:05d}"
        return {
            "auth_mechanism": "PLAIN",
            "channel_max": 2047,
            "channels": channels,
            "client_properties": {
                "capabilities": {
                    "authentication_failure_close": True,
                    "basic.nack": True,
                    "connection.blocked": True,
                    "consumer_cancel_notify": True,
                    "exchange_exchange_bindings": True,
                    "publisher_confirms": True,
                },
                "connection_name": pod,
                "information": "See https://pika.rtfd.org",
                "platform": "Python 3.11.7",
                "product": "Pika Python Client Library",
                "version": "1.4.4",
            },
            "connected_at": int(self.started * 1000) - 3_600_000 - connection * 1000,
            "frame_max": 131072,
            "garbage_collection": _garbage_collection(17),
            "host": "10.0.0.1",
            "name": name,
            "node": NODE,
            "peer_cert_issuer": None,
            "peer_cert_subject": None,
            "peer_cert_validity": None,
            "peer_host": host,
            "peer_port": int(port),
            "port": 5672,
            "protocol": "AMQP 0-9-1",
            "recv_cnt": 6 * channels,
            "recv_oct": 503 * channels,
            "recv_oct_details": Rate(0),
            "reductions": 20232,
            "reductions_details": {"rate": 858.0},
            "send_cnt": 6 * channels,
            "send_oct": 739 * channels,
            "send_oct_details": Rate(0),
            "send_pend": 0,
            "ssl": False,
            "ssl_cipher": None,
            "ssl_hash": None,
            "ssl_key_exchange": None,
            "ssl_protocol": None,
            "state": "running",
            "timeout": 60,
            "type": "network",
            "user": USER,
            "user_provided_name": pod,
            "user_who_performed_action": USER,
            "vhost": VHOST,
        }

    def connections(self) -> Iterator[dict]:
        for connection in range(self.pods.connections):
            yield self.connection(connection)

    # the broker as a whole

    def _totals(self) -> dict[str, int]:
        totals = Counter()
        for number in range(self.tenants):
            ready, unacked, consumers = counts_of(number)
            stats = self.queue_stats(number) or {}
            totals.update(
                ready=ready,
                unacked=unacked,
                consumers=consumers,
                published=stats.get("publish", 0),
                acked=stats.get("ack", 0),
                delivered=stats.get("deliver", 0),
                redelivered=stats.get("redeliver", 0),
                dead_letters=int(dead_letters(number)),
            )
        totals["ready"] += totals["dead_letters"]
        return dict(totals)

    def message_stats(self) -> dict[str, int]:
        """The vhost's (and overview's) message counts, in the single vhost's key order."""
        totals = self.totals
        return {
            "publish": totals["published"] + DROPPED, "confirm": 0, "return_unroutable": 0,
            "drop_unroutable": DROPPED, "get": 0, "get_no_ack": 0,
            "deliver": totals["delivered"], "deliver_no_ack": 0,
            "redeliver": totals["redelivered"], "ack": totals["acked"],
            "deliver_get": totals["delivered"], "get_empty": 0,
        }  # fmt: skip

    def vhost(self) -> dict:
        totals = self.totals
        messages = totals["ready"] + totals["unacked"]
        return {
            "name": VHOST,
            "description": "",
            "tags": [],
            "default_queue_type": "undefined",
            "metadata": {"description": "", "tags": []},
            "tracing": False,
            "cluster_state": {NODE: "running"},
            "send_oct": 3516,
            "send_oct_details": {"rate": 0.0},
            "recv_oct": 1458,
            "recv_oct_details": {"rate": 0.0},
            "messages_ready": totals["ready"],
            "messages_ready_details": {"rate": 0.0},
            "messages_unacknowledged": totals["unacked"],
            "messages_unacknowledged_details": {"rate": 0.0},
            "messages": messages,
            "messages_details": {"rate": 0.0},
            "message_stats": rates(self.message_stats(), lambda _: 0.0),
        }

    def overview(self) -> dict:
        totals = self.totals
        stats = self.message_stats()
        extra = {"disk_reads": 0, "disk_writes": 0}
        ordered = dict(sorted({**stats, **extra}.items()))
        return {
            "management_version": VERSION,
            "rates_mode": "basic",
            "sample_retention_policies": {"global": [600, 3600, 28800, 86400],
                                          "basic": [600, 3600], "detailed": [600]},
            "exchange_types": [_exchange_type(kind) for kind in EXCHANGE_TYPES],
            "product_version": VERSION,
            "product_name": "RabbitMQ",
            "rabbitmq_version": VERSION,
            "cluster_name": CLUSTER,
            "erlang_version": ERLANG,
            "erlang_full_version": "Erlang/OTP 25 [erts-13.1.5] [source] [64-bit] [smp:2:2] "
            "[ds:2:2:10] [async-threads:1] [jit:ns]",
            "release_series_support_status": "supported",
            "disable_stats": False,
            "enable_queue_totals": False,
            "message_stats": rates(ordered, lambda _: 0.0),
            "churn_rates": rates(
                {
                    "channel_closed": 0, "channel_created": self.pods.channels,
                    "connection_closed": 0, "connection_created": self.pods.connections,
                    "queue_created": 0, "queue_declared": 0, "queue_deleted": 0,
                },
                lambda _: 0.0,
            ),
            "queue_totals": {
                "messages": totals["ready"] + totals["unacked"],
                "messages_details": {"rate": 0.0},
                "messages_ready": totals["ready"],
                "messages_ready_details": {"rate": 0.0},
                "messages_unacknowledged": totals["unacked"],
                "messages_unacknowledged_details": {"rate": 0.0},
            },
            "object_totals": {
                "channels": self.pods.channels,
                "connections": self.pods.connections,
                "consumers": totals["consumers"],
                "exchanges": 9,
                "queues": self.tenants + 1,
            },
            "statistics_db_event_queue": 0,
            "node": NODE,
            "listeners": self._listeners(),
            "contexts": self._contexts(node=False),
        }  # fmt: skip

    def _listeners(self) -> list[dict]:
        http = {"cowboy_opts": {"sendfile": False}, "ip": "127.0.0.1", "port": self.port}
        return [
            {"node": NODE, "protocol": "amqp", "ip_address": "127.0.0.1", "port": 5672,
             "socket_opts": {"backlog": 128, "nodelay": True, "linger": [True, 0],
                             "exit_on_close": False}},
            {"node": NODE, "protocol": "clustering", "ip_address": "127.0.0.1", "port": 25672,
             "socket_opts": []},
            {"node": NODE, "protocol": "http", "ip_address": "::", "port": self.port,
             "socket_opts": http},
            {"node": NODE, "protocol": "http/prometheus", "ip_address": "::", "port": self.port,
             "socket_opts": {**http, "protocol": "http/prometheus"}},
        ]  # fmt: skip

    def _contexts(self, node: bool) -> list[dict]:
        port = str(self.port)
        management = {"ssl_opts": [], "node": NODE, "description": "RabbitMQ Management",
                      "path": "/", "cowboy_opts": "[{sendfile,false}]", "ip": "127.0.0.1",
                      "port": port}  # fmt: skip
        prometheus = management | {"description": "RabbitMQ Prometheus",
                                   "protocol": "'http/prometheus'"}  # fmt: skip
        if node:  # a node lists its contexts without ssl_opts and node, Prometheus first
            return [
                {k: v for k, v in context.items() if k not in ("ssl_opts", "node")}
                for context in (prometheus, management)
            ]
        return [management, prometheus]

    def node(self) -> dict:
        """The node as `GET /api/nodes` sends it, keys in its (hash) order; its `applications`
        are cut to a few of the 46 a real node lists (nothing reads them)."""
        uptime = int((time.time() - self.started) * 1000) + 3_600_000
        item = dict(NODE_TEMPLATE)
        item.update(
            uptime=uptime,
            exchange_types=[_exchange_type(kind) for kind in NODE_EXCHANGE_TYPES],
            contexts=self._contexts(node=True),
            name=NODE,
            sockets_used=self.pods.connections,
            fd_used=40 + self.pods.connections,
        )
        return item


EXCHANGE_TYPES = ("direct", "fanout", "headers", "topic")
NODE_EXCHANGE_TYPES = ("headers", "direct", "topic", "fanout")


def _exchange_type(kind: str) -> dict:
    return {
        "name": kind,
        "description": f"AMQP {kind} exchange, as per the AMQP specification",
        "enabled": True,
    }


def _as_detail(consumer: dict) -> dict:
    """A consumer as a queue's `consumer_details` lists it: its channel second."""
    return {"arguments": consumer["arguments"], "channel_details": consumer["channel_details"]} | {
        key: value for key, value in consumer.items() if key not in ("arguments", "channel_details")
    }


# Messages per priority of an x-max-priority 10 queue: all of them at priority 0 here.
PRIORITY_LENGTHS = {str(level): 0 for level in range(11)}
# The parts of a queue that cost most to build, left out when a column filter drops them.
HEAVY = {"backing_queue_status", "garbage_collection", "idle_since"}


def _garbage_collection(minor: int) -> dict:
    return {
        "fullsweep_after": 65535,
        "max_heap_size": 0,
        "min_bin_vheap_size": 46422,
        "min_heap_size": 233,
        "minor_gcs": minor,
    }


def _binding(source: str, destination: str, key: str) -> dict:
    return {
        "source": source,
        "vhost": VHOST,
        "destination": destination,
        "destination_type": "queue",
        "routing_key": key,
        "arguments": {},
        "properties_key": key,
    }


def _exchange(name: str, kind: str, internal: bool, by: str) -> dict:
    return {
        "arguments": {},
        "auto_delete": False,
        "durable": True,
        "internal": internal,
        "name": name,
        "type": kind,
        "user_who_performed_action": by,
        "vhost": VHOST,
    }


# Recorded from the 3.10.8 node (its paths made neutral); `node()` fills in what varies.
NODE_TEMPLATE: dict[str, Any] = {
    "partitions": [], "os_pid": "12796", "fd_total": 1048576, "sockets_total": 943629,
    "mem_limit": 10110481203, "mem_alarm": False, "disk_free_limit": 50000000,
    "disk_free_alarm": False, "proc_total": 1048576, "rates_mode": "basic", "uptime": 0,
    "run_queue": 1, "processors": 2, "exchange_types": [],
    "auth_mechanisms": [
        {"name": "PLAIN", "description": "SASL PLAIN authentication mechanism", "enabled": True},
        {"name": "AMQPLAIN", "description": "QPid AMQPLAIN mechanism", "enabled": True},
        {"name": "RABBIT-CR-DEMO",
         "description": "RabbitMQ Demo challenge-response authentication mechanism",
         "enabled": False},
    ],
    "applications": [
        {"name": "rabbit", "description": "RabbitMQ", "version": VERSION},
        {"name": "rabbitmq_management", "description": "RabbitMQ Management Console",
         "version": VERSION},
        {"name": "rabbitmq_prometheus", "description": "", "version": VERSION},
    ],
    "contexts": [],
    "log_files": ["/var/log/rabbitmq/rabbit@localhost.log",
                  "/var/log/rabbitmq/rabbit@localhost_upgrade.log", "<stdout>"],
    "db_dir": "/var/lib/rabbitmq/mnesia/rabbit@localhost",
    "config_files": ["/etc/rabbitmq/rabbitmq.conf"], "net_ticktime": 60,
    "enabled_plugins": ["rabbitmq_management", "rabbitmq_prometheus"],
    "mem_calculation_strategy": "rss",
    "ra_open_file_metrics": {"ra_log_wal": 1, "ra_log_segment_writer": 0},
    "name": NODE, "type": "disc", "running": True,
    "mem_used": 3_221_225_472, "mem_used_details": {"rate": -1060864.0},
    "fd_used": 40, "fd_used_details": {"rate": 0.0},
    "sockets_used": 2, "sockets_used_details": {"rate": 0.0},
    "proc_used": 451, "proc_used_details": {"rate": 2.0},
    "disk_free": 83411595264, "disk_free_details": {"rate": -294912.0},
    "gc_num": 26622, "gc_num_details": {"rate": 388.0},
    "gc_bytes_reclaimed": 623651448, "gc_bytes_reclaimed_details": {"rate": 5929824.0},
    "context_switches": 326023, "context_switches_details": {"rate": 587.0},
    "io_read_count": 1, "io_read_count_details": {"rate": 0.0},
    "io_read_bytes": 1, "io_read_bytes_details": {"rate": 0.0},
    "io_read_avg_time": 0.048, "io_read_avg_time_details": {"rate": 0.0},
    "io_write_count": 0, "io_write_count_details": {"rate": 0.0},
    "io_write_bytes": 0, "io_write_bytes_details": {"rate": 0.0},
    "io_write_avg_time": 0.0, "io_write_avg_time_details": {"rate": 0.0},
    "io_sync_count": 0, "io_sync_count_details": {"rate": 0.0},
    "io_sync_avg_time": 0.0, "io_sync_avg_time_details": {"rate": 0.0},
    "io_seek_count": 0, "io_seek_count_details": {"rate": 0.0},
    "io_seek_avg_time": 0.0, "io_seek_avg_time_details": {"rate": 0.0},
    "io_reopen_count": 0, "io_reopen_count_details": {"rate": 0.0},
    "mnesia_ram_tx_count": 15, "mnesia_ram_tx_count_details": {"rate": 0.0},
    "mnesia_disk_tx_count": 46, "mnesia_disk_tx_count_details": {"rate": 0.0},
    "msg_store_read_count": 0, "msg_store_read_count_details": {"rate": 0.0},
    "msg_store_write_count": 0, "msg_store_write_count_details": {"rate": 0.0},
    "queue_index_write_count": 0, "queue_index_write_count_details": {"rate": 0.0},
    "queue_index_read_count": 0, "queue_index_read_count_details": {"rate": 0.0},
    "connection_created": 4, "connection_created_details": {"rate": 0.0},
    "connection_closed": 3, "connection_closed_details": {"rate": 0.0},
    "channel_created": 5, "channel_created_details": {"rate": 0.0},
    "channel_closed": 2, "channel_closed_details": {"rate": 0.0},
    "queue_declared": 0, "queue_declared_details": {"rate": 0.0},
    "queue_created": 0, "queue_created_details": {"rate": 0.0},
    "queue_deleted": 0, "queue_deleted_details": {"rate": 0.0},
    "cluster_links": [],
    "metrics_gc_queue_length": {
        "connection_closed": 0, "channel_closed": 0, "consumer_deleted": 0,
        "exchange_deleted": 0, "queue_deleted": 0, "vhost_deleted": 0,
        "node_node_deleted": 0, "channel_consumer_deleted": 0,
    },
}  # fmt: skip


# --- the Prometheus endpoint ----------------------------------------------------------------

# Per family the plugin serves, its metrics in the order it sends them: (name, type, help, the
# value from a queue's counts and reductions).
FAMILIES: dict[str, list[tuple[str, str, str, Callable[[Counts, int], int]]]] = {
    "queue_coarse_metrics": [
        ("messages_ready", "gauge", "Messages ready to be delivered to consumers",
         lambda counts, reductions: counts.ready),
        ("messages_unacked", "gauge", "Messages delivered to consumers but not yet acknowledged",
         lambda counts, reductions: counts.unacked),
        ("messages", "gauge", "Sum of ready and unacknowledged messages - total queue depth",
         lambda counts, reductions: counts.ready + counts.unacked),
        ("process_reductions_total", "counter", "Total number of queue process reductions",
         lambda counts, reductions: reductions),
    ],
    "queue_consumer_count": [
        ("consumers", "gauge", "Consumers on a queue",
         lambda counts, reductions: counts.consumers),
    ],
}  # fmt: skip
# The plugin's own summaries, as a second scrape sends them (the first has no values yet).
TELEMETRY = [
    ("size_bytes", "Scrape size, not encoded", "6865"),
    ("duration_seconds", "Scrape duration", "9.27289e-4"),
    ("encoded_size_bytes", "Scrape size, encoded", None),
]


def metrics_chunks(world: World, vhost: str | None, families: list[str]) -> Iterator[bytes]:
    """`/metrics/detailed` as the plugin writes it: the families asked, then the node's build
    and identity. (The plugin lists queues in its tables' hash order; here by number.)"""
    ours = vhost in (None, VHOST)
    world.scrapes += 1
    grown = world.scrapes * REDUCTIONS_PER_SCRAPE
    for family in (name for name in FAMILIES if name in families):
        for metric, kind, help_text, value in FAMILIES[family]:
            full = f"rabbitmq_detailed_queue_{metric}"
            yield f"# TYPE {full} {kind}\n# HELP {full} {help_text}\n".encode()
            if not ours:
                continue
            head = f'{full}{{vhost="{VHOST}",queue="'
            dead = value(Counts(world.totals["dead_letters"], 0, 0), 9954)
            yield f'{head}{DEAD_QUEUE}"}} {dead}\n'.encode()
            for start in range(0, world.tenants, CHUNK):
                numbers = range(start, min(start + CHUNK, world.tenants))
                lines = [
                    f'{head}{queue_name(n)}"}} {value(counts_of(n), reductions_of(n) + grown)}\n'
                    for n in numbers
                ]
                yield "".join(lines).encode()
    yield _identity().encode()


def _identity() -> str:
    lines = [
        "# TYPE rabbitmq_build_info untyped",
        "# HELP rabbitmq_build_info RabbitMQ & Erlang/OTP version info",
        f'rabbitmq_build_info{{rabbitmq_version="{VERSION}",prometheus_plugin_version='
        f'"{VERSION}",prometheus_client_version="4.9.1",erlang_version="{ERLANG}"}} 1',
        "# TYPE rabbitmq_identity_info untyped",
        "# HELP rabbitmq_identity_info RabbitMQ node & cluster identity info",
        f'rabbitmq_identity_info{{rabbitmq_node="{NODE}",rabbitmq_cluster="{CLUSTER}",'
        f'rabbitmq_cluster_permanent_id="{CLUSTER_ID}"}} 1',
    ]
    labels = '{registry="detailed",content_type="text/plain; version=0.0.4"}'
    for name, help_text, value in TELEMETRY:
        lines += [f"# TYPE telemetry_scrape_{name} summary", f"# HELP telemetry_scrape_{name} "
                  f"{help_text}"]  # fmt: skip
        if value is not None:
            lines += [f"telemetry_scrape_{name}_count{labels} 2",
                      f"telemetry_scrape_{name}_sum{labels} {value}"]  # fmt: skip
    return "\n".join(lines) + "\n\n"


# --- routes ---------------------------------------------------------------------------------


class Request(NamedTuple):
    segments: list[str]  # after /api/, each percent-decoded
    params: dict[str, str]
    sampling: Sampling
    tree: dict | None  # columns=, as column_tree makes it

    @classmethod
    def of(cls, path: str, params: dict[str, str], sampling: Sampling) -> "Request":
        segments = [unquote(part) for part in path[len("/api/") :].split("/") if part]
        columns = params.get("columns")
        return cls(segments, params, sampling, column_tree(columns) if columns else None)


def answer_api(world: World, request: Request) -> Body:
    """The management API's answer to a GET, or Missing."""
    segments, tree = request.segments, request.tree
    head, rest = (segments[0], segments[1:]) if segments else ("", [])
    if rest and head in VHOST_SCOPED and rest[0] != VHOST:
        raise Missing
    route = ROUTES.get((head, len(rest)))
    if route is None:
        raise Missing
    value = route(world, rest, request)
    if isinstance(value, Body):
        return value
    if isinstance(value, Iterator):
        items = (pick(item, tree, request.sampling) for item in value) if tree else value
        return listing_body(items, request.sampling)
    return json_body(pick(value, tree, request.sampling) if tree else value, request.sampling)


def _queues(world: World, rest: list[str], request: Request) -> Iterator[dict]:
    if request.params.get("disable_stats") == "true":
        return (world.queue_settings(number) for number in world.queue_numbers())
    lean = request.tree is not None and not request.tree.keys() & HEAVY
    return (world.queue(number, request.sampling, lean=lean) for number in world.queue_numbers())


def _queue(world: World, rest: list[str], request: Request) -> dict:
    number = world.find_queue(rest[1])
    if request.params.get("disable_stats") == "true":
        return world.queue_settings(number)
    return world.queue(number, request.sampling, single=True)


def _bindings_of(world: World, rest: list[str], request: Request) -> Iterator[dict]:
    exchange, direction = rest[1], rest[3]
    if rest[2] != "bindings" or direction not in ("source", "destination"):
        raise Missing
    # 3.10 answers a missing exchange with no bindings, not 404; none binds to an exchange.
    known = {item["name"] for item in world.exchanges()}
    if direction == "destination" or exchange not in known:
        return iter(())
    return world.bindings(exchange)


def _node(world: World, rest: list[str], request: Request) -> dict:
    if rest[0] != NODE:
        raise Missing(Body(500, None, b"", gzipped=False))  # what 3.10 answers, body and all
    return world.node()


def _in_vhost(world: World, rest: list[str], request: Request) -> Iterator[dict]:
    """A vhost's channels or connections (there is one vhost: all of them)."""
    if rest[1] not in ("channels", "connections"):
        raise Missing
    return world.channels() if rest[1] == "channels" else world.connections()


ROUTES: dict[tuple[str, int], Callable[[World, list[str], Request], Any]] = {
    ("whoami", 0): lambda world, rest, request: {"name": USER, "tags": ["administrator"]},
    ("overview", 0): lambda world, rest, request: world.overview(),
    ("cluster-name", 0): lambda world, rest, request: {"name": CLUSTER},
    ("vhosts", 0): lambda world, rest, request: iter([sorted_keys(world.vhost())]),
    ("vhosts", 1): lambda world, rest, request: world.vhost(),
    ("vhosts", 2): _in_vhost,
    ("nodes", 0): lambda world, rest, request: iter([world.node()]),
    ("nodes", 1): _node,
    ("queues", 0): _queues,
    ("queues", 1): _queues,
    ("queues", 2): _queue,
    ("exchanges", 0): lambda world, rest, request: iter(world.exchanges()),
    ("exchanges", 1): lambda world, rest, request: iter(world.exchanges()),
    ("exchanges", 2): lambda world, rest, request: world.exchange(rest[1]),
    ("exchanges", 4): _bindings_of,
    ("bindings", 0): lambda world, rest, request: world.bindings(),
    ("bindings", 1): lambda world, rest, request: world.bindings(),
    ("consumers", 0): lambda world, rest, request: world.consumers(),
    ("consumers", 1): lambda world, rest, request: world.consumers(),
    ("connections", 0): lambda world, rest, request: world.connections(),
    ("channels", 0): lambda world, rest, request: world.channels(),
}
# Routes whose first segment after the resource is a vhost: any other vhost does not exist.
VHOST_SCOPED = {"vhosts", "queues", "exchanges", "bindings", "consumers"}


def answer_metrics(world: World, path: str, query: list[tuple[str, str]]) -> Body:
    if path != "/metrics/detailed":
        raise Missing(Body(404, "text/plain", b"Unknown Registry", gzipped=False))
    vhosts = [value for name, value in query if name == "vhost"]
    families = [value for name, value in query if name == "family"]
    vhost = vhosts[0] if vhosts else None
    return body_of(metrics_chunks(world, vhost, families), METRICS_TYPE)


# --- the server -----------------------------------------------------------------------------


def cache_key(path: str, query: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    # The same question however its parameters are ordered or encoded (`%2C` or `,`).
    return path, tuple(sorted(parse_qsl(query, keep_blank_values=True)))


class SyntheticBroker:
    """A RabbitMQ 3.10 management API and Prometheus endpoint on 127.0.0.1 (one port, paths
    `/api/` and `/metrics/detailed`), for `tenants` tenant queues; read-only."""

    def __init__(self, tenants: int = 100_000, *, consumers_per_channel: int = 1,
                 channels_per_connection: int = 10):  # fmt: skip
        self.tenants = tenants
        self.consumers_per_channel = consumers_per_channel
        self.channels_per_connection = channels_per_connection
        # Requests by path, and by path with their query as sent.
        self.requests_seen: Counter[str] = Counter()
        self.queries_seen: Counter[str] = Counter()
        # Answers built after start (a request Warren's polls were not known to make), with the
        # seconds each took: a benchmark can tell the broker's build from Warren's own time.
        self.late_builds: list[tuple[str, float]] = []
        self.start_seconds: float | None = None
        self._cache: dict[tuple, Body] = {}
        self._build_lock = threading.Lock()
        self._seen_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.world: World | None = None

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def metrics_url(self) -> str:
        """Warren asks `<metrics_url>/metrics/detailed`."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def _port(self) -> int:
        if self._server is None:
            raise RuntimeError("the synthetic broker is not started")
        return self._server.server_address[1]

    def start(self) -> "SyntheticBroker":
        """Bind a free port, build the answers to Warren's polls, serve in a thread."""
        started = time.perf_counter()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.broker = self  # type: ignore[attr-defined]
        self.world = World(
            self.tenants, self.consumers_per_channel, self.channels_per_connection, self._port
        )
        for path, params in warren_requests():
            self.answer(path, urlencode(params))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.start_seconds = time.perf_counter() - started
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> "SyntheticBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def totals(self) -> dict[str, int]:
        """ready, unacked, consumers (over every queue, `q.dead` too), dead_letters, ..."""
        return dict(self.world.totals)

    def seen(self, path: str, query: str) -> None:
        with self._seen_lock:
            self.requests_seen[path] += 1
            self.queries_seen[f"{path}?{query}" if query else path] += 1

    def answer(self, path: str, query: str) -> Body:
        """The answer to GET `path?query`, from the cache when it is still right."""
        key = cache_key(path, query)
        known = self._cache.get(key)
        if known is not None and known.expires > time.monotonic():
            return known
        with self._build_lock:  # one build at a time: a second asker waits, then reads it
            known = self._cache.get(key)
            if known is None or known.expires <= time.monotonic():
                started = time.perf_counter()
                known = self._cache[key] = self._build(path, key[1])
                if self._thread is not None:
                    self.late_builds.append(
                        (f"{path}?{query}".rstrip("?"), time.perf_counter() - started)
                    )
        return known

    def _build(self, path: str, query: tuple[tuple[str, str], ...]) -> Body:
        params = dict(query)
        sampling = Sampling.of(params)
        try:
            if path.startswith("/metrics"):
                body = answer_metrics(self.world, path, list(query))
            elif path.startswith("/api/"):
                body = answer_api(self.world, Request.of(path, params, sampling))
            else:
                raise Missing
        except Missing as missing:
            body = missing.body
        if sampling.sampled:
            body = body._replace(expires=time.monotonic() + sampling.step)
        return body


def warren_requests() -> list[tuple[str, list[tuple[str, str]]]]:
    """What Warren's polls ask, built at start: the topology (with and without statistics),
    the counts from the metrics endpoint, and the consumers' listings. Warren's own constants,
    so that a column it adds is built here too."""
    from dashboard.broker.metrics import FAMILIES as WARREN_FAMILIES
    from dashboard.reads.consumers import CHANNEL_COLUMNS, CONNECTION_COLUMNS
    from dashboard.reads.overview import QUEUE_COLUMNS, SETTINGS_COLUMNS
    from dashboard.reads.queue_detail import BROKER_SECONDS, BROKER_STEP

    vhost = "/api/queues/%2F"
    return [
        ("/api/exchanges/%2F/tenants/bindings/source", []),
        (f"/api/exchanges/%2F/{DLX}/bindings/source", []),
        (vhost, [("columns", ",".join(QUEUE_COLUMNS))]),
        (vhost, [("columns", ",".join(SETTINGS_COLUMNS)), ("disable_stats", "true")]),
        ("/metrics/detailed", [("vhost", VHOST), *(("family", f) for f in WARREN_FAMILIES)]),
        ("/api/consumers/%2F", []),
        ("/api/vhosts/%2F/connections", [("columns", ",".join(CONNECTION_COLUMNS))]),
        (
            "/api/vhosts/%2F/channels",
            [
                ("columns", ",".join(CHANNEL_COLUMNS)),
                ("msg_rates_age", str(BROKER_SECONDS)),
                ("msg_rates_incr", str(BROKER_STEP)),
            ],
        ),
    ]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Warren's requests.Session expects

    def version_string(self) -> str:
        return "Cowboy"

    def do_GET(self) -> None:
        broker: SyntheticBroker = self.server.broker  # type: ignore[attr-defined]
        path, _, query = self.path.partition("?")
        broker.seen(path, query)
        if path.startswith("/api/"):
            refused = self._refused()
            if refused is not None:
                return self._send(refused)
        self._send(broker.answer(path, query))

    def _refused(self) -> Body | None:
        """None for guest/guest; else the broker's 401 (empty when no credentials came)."""
        challenge = (("www-authenticate", 'Basic realm="RabbitMQ Management"'),)
        given = self.headers.get("Authorization", "")
        if not given.startswith("Basic "):
            return Body(401, None, b"", gzipped=False, headers=challenge)
        try:
            user, _, password = base64.b64decode(given[6:]).decode().partition(":")
        except ValueError:
            user, password = "", ""
        if (user, password) == (USER, PASSWORD):
            return None
        return Body(401, JSON_TYPE, LOGIN_FAILED, gzipped=False, headers=challenge)

    def _refuse_change(self) -> None:
        # Read-only: nothing changes here. The body is read so that the connection stays usable.
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(Body(405, None, b"", gzipped=False))

    do_PUT = do_POST = do_DELETE = _refuse_change

    def _send(self, body: Body) -> None:
        gzip_ok = "gzip" in self.headers.get("Accept-Encoding", "")
        data = body.data if gzip_ok or not body.gzipped else body.plain()
        self.send_response(body.status)
        if body.content_type:
            self.send_header("content-type", body.content_type)
        if body.status == 200 and body.content_type == JSON_TYPE:
            self.send_header("cache-control", "no-cache")
            self.send_header("vary", "accept, accept-encoding, origin")
        for name, value in body.headers:
            self.send_header(name, value)
        if body.gzipped and gzip_ok:
            self.send_header("content-encoding", "gzip")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a poll at 100,000 tenants is a handful of requests; nobody reads them


def _memory_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=100_000)
    parser.add_argument("--consumers-per-channel", type=int, default=1)
    parser.add_argument("--channels-per-connection", type=int, default=10)
    args = parser.parse_args()
    broker = SyntheticBroker(
        args.tenants,
        consumers_per_channel=args.consumers_per_channel,
        channels_per_connection=args.channels_per_connection,
    ).start()
    print(f"{args.tenants:,} tenants, built in {broker.start_seconds:.1f} s, {_memory_mb():.0f} MB")
    print(f"WARREN_MANAGEMENT_URL={broker.management_url}")
    print(f"WARREN_METRICS_URL={broker.metrics_url}", flush=True)
    # A terminated run says what it was asked too (a background job ignores Ctrl-C's SIGINT).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
        for request, count in broker.queries_seen.most_common():
            print(f"{count:>5} {request}")
        for request, seconds in broker.late_builds:
            print(f"built late in {seconds:.2f} s: {request}", flush=True)


if __name__ == "__main__":
    main()
