"""The mover: takes messages from a queue and publishes copies elsewhere, at least once.

A message leaves its source only after the broker confirmed its copy: the source delivery is
acked on the copy's publisher confirm, never before. Copies are published `mandatory`, so an
unroutable copy comes back (basic.return) instead of vanishing; from the first return or nack
on, no source message is acked any more: every original still in flight goes back to its queue
and the move stops. A crash at any moment leaves each message in the source (unacked deliveries
return to ready when the connection dies) or in the target, and at most the in-flight window is
duplicated.

Speed comes from never waiting on one message: a SelectConnection consumes under a prefetch
window and publishes each copy as it arrives, and confirms (often `multiple`) ack the source up
to the last confirmed delivery in one frame. The per-message frames bypass pika's general
machinery (see `broker/delivery_connection`). The window matters most: the broker confirms
persistent copies in batches, so a wide window keeps it busy while earlier confirms are due.
It starts narrow and widens once the first deliveries show how big the messages are, so that
the bytes in flight stay bounded whatever the queue holds.
"""

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from pika.exceptions import ConnectionClosedByBroker, ConnectionClosedByClient
from pika.spec import Basic, BasicProperties

from dashboard.broker.delivery_connection import DeliveryConnection, OnItsOwnConnection
from dashboard.broker.session import Session
from dashboard.errors import WarrenError

# Where a copy goes: (exchange, routing key), decided per message from its properties, the
# routing key it came with and its body (None: leave it in the source).
Route = Callable[[BasicProperties, str, bytes], tuple[str, str] | None]
# A copy's properties, from the original's and where the copy goes.
Transform = Callable[[BasicProperties, tuple[str, str]], BasicProperties]
Progress = Callable[["MoveResult"], None]

IDLE_SECONDS = 2.0
# The first deliveries, under a narrow window, tell the message size; then the window widens so
# that at most about WINDOW_BYTES are in flight, up to MAX_WINDOW messages.
PROBE_WINDOW = 10
WINDOW_BYTES = 16 * 1024 * 1024
MAX_WINDOW = 10_000
SOURCE_EMPTY = "the source had no more ready messages"
TICK_SECONDS = 0.1


@dataclass
class MoveResult:
    """Exact counts: `moved` copies confirmed and originals acked; `failed` originals sent back
    to the source (their copy was returned, nacked, or never confirmed); `skipped` the original
    the route found no destination for, back in the source (the move stops there)."""

    moved: int = 0
    failed: int = 0
    skipped: int = 0
    # Of the `failed`, those whose copy may be in the target too: confirmed, or sent and not
    # confirmed, when the connection broke, or acked after a return (which one was returned is
    # not known). The original is back in the source: the message may be in both places.
    may_be_duplicated: int = 0
    # At the latest progress report: at most this many originals out of the source unacked
    # (the window in force, or what is left to move), each of which a crash leaves in the
    # source and perhaps in the target too.
    in_flight: int = 0
    # Filtered moves only: messages that did not match, put back where they came from.
    kept: int = 0
    # Requeues: messages redriven too often, put back at the end of the source.
    held_back: int = 0
    # The moved copies by where they went: (exchange, routing key) -> how many.
    moved_to: dict[tuple[str, str], int] = field(default_factory=dict)
    delivered: int = 0
    stopped: str | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    @property
    def clean(self) -> bool:
        """Ended with nothing left behind: not stopped short, no copy refused or lost."""
        return self.stopped in (None, SOURCE_EMPTY) and self.failed == 0

    @property
    def seconds(self) -> float:
        return (self.finished_at or time.time()) - self.started_at


def window_for(largest_body: int, most: int = MAX_WINDOW) -> int:
    """How many messages the size of the largest body seen fit in WINDOW_BYTES (1 to `most`)."""
    return max(1, min(most, WINDOW_BYTES // max(largest_body, 1)))


def to_queue(queue: str) -> Route:
    """Every copy to `queue`, through the default exchange."""
    return lambda _properties, _key, _body: ("", queue)


def keep_properties(properties: BasicProperties, _target: tuple[str, str]) -> BasicProperties:
    return properties


class Mover(OnItsOwnConnection):
    """One move from `source`, driven by its own connection's I/O loop in the calling thread."""

    untouched = "nothing was moved"

    def __init__(
        self,
        session: Session,
        source: str,
        route: Route,
        limit: int,
        transform: Transform = keep_properties,
        window: int = MAX_WINDOW,
        rate: float | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ):
        self.session = session
        self.source = source
        self.route = route
        self.limit = limit
        self.transform = transform
        self.window = window
        self.rate = rate
        self.progress = progress
        self.cancel = cancel or threading.Event()
        self.result = MoveResult()
        # Publish sequence number -> source delivery tag, for copies not yet confirmed.
        self._pending: dict[int, int] = {}
        self._next_seq = 1
        self._confirmed: set[int] = set()
        # Source delivery tag -> where its copy went, until the original is acked.
        self._target_of: dict[int, tuple[str, str]] = {}
        # Originals whose copies are confirmed, not acked yet (see `_ack_confirmed`), in order.
        self._ackable: deque[int] = deque()
        # Prefetch of all consumers started: at most this many deliveries are unacked.
        self._window_total = 0
        self._settled_upto = 0
        self._tainted = False
        # Returns whose copy's ack has not come yet.
        self._returns = 0
        self._consuming = False
        # Deliveries not yet published (held back by the rate limit), in delivery order.
        self._waiting: deque = deque()
        self._drain_due = False
        self._sent = 0
        self._last_activity = time.monotonic()
        self._last_progress = 0.0
        self._connection: DeliveryConnection | None = None
        self._source_channel = None
        self._target_channel = None
        self._consumer_tags: list[str] = []
        # Consumers cancelled whose cancel-ok has not come: deliveries may still be on the way.
        self._cancelling = 0
        self._closing = False
        self._probing = True
        self._largest = 0
        self._error: WarrenError | None = None

    def run(self) -> MoveResult:
        if self.limit <= 0:
            self.result.finished_at = time.time()
            return self.result
        self._drive(f"warren-mover {self.source}")
        self.result.finished_at = time.time()
        if self._error is not None and self.result.delivered == 0:
            raise self._error
        return self.result

    # -- setting up ---------------------------------------------------------------------------

    def _on_open(self, connection) -> None:
        connection.channel(on_open_callback=self._on_target_open)

    def _on_target_open(self, channel) -> None:
        self._target_channel = channel
        channel.add_on_return_callback(self._on_return)
        channel.add_on_close_callback(self._on_channel_closed)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm)
        self._connection.channel(on_open_callback=self._on_source_open)

    def _on_source_open(self, channel) -> None:
        self._source_channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        self._connection.delivering_channels = {channel.channel_number}
        self._connection.on_delivery = self._on_delivery
        self._consuming = True
        self._consume(min(PROBE_WINDOW, self.window, self.limit))
        self._connection.ioloop.call_later(TICK_SECONDS, self._tick)

    def _consume(self, prefetch: int) -> None:
        """Consume under `prefetch` (a consumer's prefetch is fixed when it starts)."""
        self._window_total += prefetch

        def start(_frame) -> None:
            if self._consuming:
                tag = self._source_channel.basic_consume(self.source, _taken_by_connection)
                self._consumer_tags.append(tag)

        self._source_channel.basic_qos(prefetch_count=prefetch, callback=start)

    def _widen(self) -> None:
        """After the probe: a second consumer beside the probe's makes up the full window
        (no pause for a cancel round trip, as replacing the probe would need)."""
        self._probing = False
        window = min(window_for(self._largest, self.window), self.limit)
        if window > PROBE_WINDOW and self._consuming:
            self._consume(window - PROBE_WINDOW)

    # -- moving -------------------------------------------------------------------------------

    def _on_delivery(
        self, _channel: int, delivery_tag: int, routing_key: str, encoded_properties: bytes,
        body: bytes,
    ) -> None:  # fmt: skip
        self._last_activity = time.monotonic()
        if self.result.delivered >= self.limit:
            # Acks are held back so that the broker cannot get this far (see `_ack_confirmed`).
            self._source_channel.basic_nack(delivery_tag, requeue=True)
            return
        self.result.delivered += 1
        self._largest = max(self._largest, len(body))
        if self.result.delivered >= self.limit:
            self._stop_consuming()
        elif self._probing and self.result.delivered >= PROBE_WINDOW:
            self._widen()
        properties = BasicProperties()
        properties.decode(encoded_properties)
        target = self.route(properties, routing_key, body)
        if target is None:
            # Requeued, it would come straight back: stop here instead of going round.
            self.result.skipped += 1
            self._source_channel.basic_nack(delivery_tag, requeue=True)
            self.result.stopped = self.result.stopped or "a message has no destination"
            self._stop_consuming()
            return
        self._waiting.append((delivery_tag, target, properties, encoded_properties, body))
        if not self._drain_due:
            self._drain()

    def _drain(self) -> None:
        """Publish the waiting deliveries in the order they came, each once the rate limit lets
        it go. The order matters: the source is acked up to each confirmed prefix (`multiple`),
        so a delivery still waiting behind a later one would be acked with it, uncopied."""
        self._drain_due = False
        while self._waiting:
            delay = self._rate_delay()
            if delay > 0:
                self._drain_due = True
                self._connection.ioloop.call_later(delay, self._drain)
                return
            self._publish(*self._waiting.popleft())

    def _rate_delay(self) -> float:
        if not self.rate:
            return 0.0
        due = self.result.started_at + self._sent / self.rate
        return max(0.0, due - time.time())

    def _publish(self, delivery_tag: int, target, properties, encoded: bytes, body: bytes) -> None:
        self._sent += 1
        if self._tainted or not self._target_channel.is_open:
            self._settle_back([delivery_tag])
            return
        exchange, routing_key = target
        self._pending[self._next_seq] = delivery_tag
        self._target_of[delivery_tag] = target
        self._next_seq += 1
        if self.transform is not keep_properties:
            encoded = b"".join(self.transform(properties, target).encode())
        self._connection.publish(
            self._target_channel.channel_number, exchange, routing_key, encoded, body
        )

    def _on_return(self, _channel, _method, _properties, _body) -> None:
        # The returned copy's own confirm is still to come, as an ack: from here on, an ack
        # may be that of a copy that is not in the target.
        self._returns += 1
        self._taint("a copy could not be routed to its target (returned)")

    def _on_confirm(self, frame) -> None:
        self._last_activity = time.monotonic()
        method = frame.method
        seqs = self._covered(method.delivery_tag) if method.multiple else [method.delivery_tag]
        if isinstance(method, Basic.Nack):
            self._taint("the broker refused a copy (nack)")
        if self._tainted:
            self._settle_tainted(method, [seq for seq in seqs if seq in self._pending])
        else:
            self._confirmed.update(seqs)
            self._take_confirmed_prefix()
            self._ack_confirmed()
        self._maybe_finish()

    def _settle_tainted(self, method, seqs: list[int]) -> None:
        """After a refusal: a nacked copy's original goes back. An acked copy is in the target,
        so its original may go, one by one (the acks of the window's prefix no longer apply);
        after a return, an ack may be the returned copy's own, so its original goes back, and
        the others covered are counted as perhaps in both places."""
        if isinstance(method, Basic.Ack) and not self._returns:
            self._ack_each(seqs)
            return
        if isinstance(method, Basic.Ack):
            returned = min(self._returns, len(seqs))
            self._returns -= returned
            self.result.may_be_duplicated += len(seqs) - returned
        self._settle_back([self._pending.pop(seq) for seq in seqs])

    def _ack_each(self, seqs: list[int]) -> None:
        moved_to = self.result.moved_to
        for seq in seqs:
            tag = self._pending.pop(seq)
            self._confirmed.discard(seq)
            target = self._target_of.pop(tag)
            moved_to[target] = moved_to.get(target, 0) + 1
            self._source_channel.basic_ack(tag)
            self.result.moved += 1

    def _covered(self, upto: int) -> list[int]:
        """Pending sequence numbers up to `upto`: a prefix of the (ordered) pending dict."""
        covered = []
        for seq in self._pending:
            if seq > upto:
                break
            covered.append(seq)
        return covered

    def _take_confirmed_prefix(self) -> None:
        """Move the longest run of confirmed copies from pending to ackable."""
        # Sequence numbers only grow, and the dict keeps insertion order: its first key is the
        # oldest copy not yet settled.
        while self._pending and next(iter(self._pending)) in self._confirmed:
            seq = next(iter(self._pending))
            self._ackable.append(self._pending.pop(seq))
            self._confirmed.discard(seq)

    def _ack_confirmed(self) -> None:
        """Ack the source up to the last ackable original, in one frame. While consumers may
        still get deliveries, only as far as keeps the broker from delivering past the limit
        (each ack frees a place in the window): a delivery past the limit would have to be
        sent back, and a message sent back reaches its queue some time after the move ended,
        which would make the count left there wrong."""
        count = len(self._ackable)
        if self._consuming or self._cancelling:
            count = min(count, self.limit - self._window_total - self.result.moved)
        if count <= 0:
            return
        moved_to = self.result.moved_to
        for _ in range(count):
            tag = self._ackable.popleft()
            target = self._target_of.pop(tag)
            moved_to[target] = moved_to.get(target, 0) + 1
        self._source_channel.basic_ack(tag, multiple=True)
        self.result.moved += count
        self._report()

    def _settle_back(self, delivery_tags: list[int]) -> None:
        for tag in delivery_tags:
            self._target_of.pop(tag, None)
            if self._source_channel and self._source_channel.is_open:
                self._source_channel.basic_nack(tag, requeue=True)
            self.result.failed += 1

    def _taint(self, reason: str) -> None:
        if not self._tainted:
            self._tainted = True
            self.result.stopped = reason
            self._stop_consuming()
            # Confirmed already, waiting for the copies before them: their originals may go.
            if self._source_channel.is_open and not self._returns:
                self._ack_each([seq for seq in self._pending if seq in self._confirmed])

    # -- ending -------------------------------------------------------------------------------

    def _tick(self) -> None:
        if self._connection is None or self._connection.is_closed:
            return
        if self.cancel.is_set() and not self.result.stopped:
            self.result.stopped = "cancelled"
            self._stop_consuming()
        idle = time.monotonic() - self._last_activity > IDLE_SECONDS
        if idle and self._consuming and not self._pending:
            self.result.stopped = self.result.stopped or SOURCE_EMPTY
            self._stop_consuming()
        self._report()
        if not self._maybe_finish():
            self._connection.ioloop.call_later(TICK_SECONDS, self._tick)

    def _stop_consuming(self) -> None:
        if self._consuming:
            self._consuming = False
            if self._source_channel.is_open:
                for tag in self._consumer_tags:
                    self._cancelling += 1
                    self._source_channel.basic_cancel(tag, callback=self._on_cancel_ok)

    def _on_cancel_ok(self, _frame) -> None:
        self._cancelling -= 1
        self._maybe_finish()

    def _maybe_finish(self) -> bool:
        """Once nothing more can arrive and every copy is settled: the last acks, then close."""
        done_delivering = not self._consuming and not self._cancelling
        settled = not self._pending and not self._waiting
        if not (done_delivering and settled and self._connection.is_open) or self._closing:
            return self._closing
        self._closing = True
        if self._source_channel.is_open:
            self._ack_confirmed()
        self._report(force=True)
        self._connection.close()
        return True

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.progress and (force or now - self._last_progress > 0.5):
            self._last_progress = now
            settled = self.result.moved + self.result.failed + self.result.skipped
            self.result.in_flight = min(self._window_total, self.limit - settled)
            self.progress(self.result)

    def _on_channel_closed(self, _channel, reason) -> None:
        if self._connection.is_open:
            if not self._closing:
                self.result.stopped = self.result.stopped or f"a channel closed: {reason}"
            self._connection.close()

    def _on_closed(self, _connection, reason) -> None:
        unsettled = len(self._pending) + len(self._waiting) + len(self._ackable)
        if unsettled or self._consuming:
            # The broker returns every unacked original to the source when the connection dies:
            # those whose copies were confirmed are then in both places, and those whose copies
            # were sent may be.
            self.result.failed += unsettled
            self.result.may_be_duplicated += len(self._pending) + len(self._ackable)
            if not isinstance(reason, ConnectionClosedByBroker | ConnectionClosedByClient):
                # Lost, not closed: if the broker itself went down, the acks it had not yet
                # written to disk are lost with it, and those originals come back to the source
                # beside their confirmed copies (seen after a SIGKILL of the node).
                self.result.may_be_duplicated += self.result.moved
            self._pending.clear()
            self._waiting.clear()
            self._ackable.clear()
            self.result.stopped = self.result.stopped or f"the connection closed: {reason}"
        self._connection.ioloop.stop()


def _taken_by_connection(*_delivery) -> None:
    """Deliveries go to `Mover._on_delivery` through the connection, never to pika's consumer."""


def holding_queue_name(purpose: str, source: str) -> str:
    """A new holding queue's name, chosen before the move so that the audit log has it first."""
    return f"warren.{purpose}.{source}.{secrets.token_hex(4)}"


def move_through_holding(
    session: Session,
    source: str,
    holding: str,
    limit: int,
    route: Route,
    transform: Transform = keep_properties,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    rate: float | None = None,
) -> tuple[MoveResult, str | None]:
    """Move up to `limit` messages out of `source` into the new queue `holding`, then on from
    there by `route` (which may lead back to `source`), at most `rate` a second: the mover never
    meets its own copies in a queue it reads. The second move's result, and the holding queue's
    name if anything is left in it (a crash or a refusal in between: the messages wait there,
    not lost)."""
    _holding_queue(session, holding)
    out = Mover(session, source, to_queue(holding), limit, progress=progress, cancel=cancel).run()
    back = Mover(
        session, holding, _or_back_to(route, source), out.moved, transform, rate=rate,
        progress=progress,
    ).run()  # fmt: skip
    if session.ready_count(holding) == 0:
        _holding_queue(session, holding, delete=True)
        return back, None
    return back, holding


def _or_back_to(route: Route, source: str) -> Route:
    """`route`, with a message it finds no destination for returned to `source`."""
    return lambda properties, key, body: route(properties, key, body) or ("", source)


def _holding_queue(session: Session, queue: str, delete: bool = False) -> None:
    """Declare a holding queue, or delete it (only if empty)."""
    session.on_channel(
        lambda channel: (
            channel.queue_delete(queue, if_empty=True)
            if delete
            else channel.queue_declare(queue, durable=True)
        ),
        f"Holding queue {queue!r} cannot be {'deleted' if delete else 'declared'}",
    )
