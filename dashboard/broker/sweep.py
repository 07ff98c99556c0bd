"""A sweep: one pass over the ready messages of a queue that leaves them where they are.

Every message is delivered and held unacked until the pass ends; then its channels close and the
broker puts each one back in its place, in its order. Only those the caller chose to take are
acked, after it decided (a discard, which records their ids first). If Warren dies mid-pass,
the connection drops and the broker puts every unacked message back: nothing leaves the queue
but what was acked on purpose.

What it costs: the queue's messages are out of consumers' reach while the pass holds them (one
pass over 100,000 messages takes seconds), each comes back marked redelivered, and on a quorum
queue each counts one delivery (`x-delivery-count`), toward the queue's delivery limit. A pass
longer than the broker's consumer timeout is cut short by it, and says so.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from pika.spec import BasicProperties

from dashboard.broker.delivery_connection import DeliveryConnection, OnItsOwnConnection
from dashboard.broker.session import Session
from dashboard.errors import BrokerError, NotFound, WarrenError

# The pass ends once no message came for this long (the queue held fewer than it said, or a
# consumer took some meanwhile).
IDLE_SECONDS = 1.0
TICK_SECONDS = 0.1
# The broker finds an ack by walking its channel's unacked messages from the oldest: an ack
# deep inside 100,000 held on one channel cost it about 20 ms (1,000 acks: 20 s). So a pass
# spreads what it holds over channels of at most this many (a discard of 1,000 in 100,000:
# see the README's Performance).
CHANNEL_HOLDS = 5_000


@dataclass
class Delivery:
    tag: int
    routing_key: str
    properties: BasicProperties
    body: bytes


# Called with each delivery in queue order; True: take (ack) it once the pass has seen all.
Visit = Callable[[Delivery], bool]
# Called once the pass has seen all, with the count taken, before any ack: may refuse by raising.
BeforeTaking = Callable[[int], None]


@dataclass
class SweepResult:
    seen: int = 0
    taken: int = 0
    # The queue's ready count once what the pass held is back in it.
    ready_after: int = 0
    stopped: str | None = None
    seconds: float = 0.0


class Sweep(OnItsOwnConnection):
    """One pass over at most `limit` ready messages of `queue`."""

    untouched = "nothing was read"

    def __init__(
        self,
        session: Session,
        queue: str,
        limit: int,
        visit: Visit,
        before_taking: BeforeTaking | None = None,
    ):
        self.session = session
        self.queue = queue
        self.limit = limit
        self.visit = visit
        self.before_taking = before_taking
        self.result = SweepResult()
        # What the pass chose to take: (channel number, delivery tag), in delivery order.
        self._take: list[tuple[int, int]] = []
        self._connection: DeliveryConnection | None = None
        # Channel number -> channel, and how many deliveries each holds.
        self._channels: dict[int, object] = {}
        self._held: dict[int, int] = {}
        self._last_delivery = time.monotonic()
        self._ending = False
        self._error: BaseException | None = None

    def run(self) -> SweepResult:
        started = time.monotonic()
        if self.limit > 0:
            self._drive(f"warren-sweep {self.queue}")
        if self._error is not None:
            raise self._error
        # Done once the broker has put back what the pass held (a moment after its channels
        # closed: about 70,000 a second here), so that the next look sees them all.
        back = self.result.seen - self.result.taken
        self.result.ready_after = self.session.ready_once_back(
            self.queue, back, seconds=3 + back / 10_000
        )
        self.result.seconds = time.monotonic() - started
        return self.result

    def _on_open(self, connection) -> None:
        connection.on_delivery = self._on_delivery
        self._open_channel()
        connection.ioloop.call_later(TICK_SECONDS, self._tick)

    def _open_channel(self) -> None:
        self._connection.channel(on_open_callback=self._on_channel_open)

    def _on_channel_open(self, channel) -> None:
        number = channel.channel_number
        self._channels[number] = channel
        self._held[number] = 0
        channel.add_on_close_callback(self._on_channel_closed)
        self._connection.delivering_channels.add(number)
        # Each channel holds at most CHANNEL_HOLDS; once it does, the next one takes over.
        channel.basic_qos(
            prefetch_count=CHANNEL_HOLDS,
            callback=lambda _frame: channel.basic_consume(self.queue, _taken_by_connection),
        )

    def _on_delivery(
        self, channel: int, tag: int, routing_key: str, encoded: bytes, body: bytes
    ) -> None:
        self._last_delivery = time.monotonic()
        self._held[channel] += 1
        if self._ending or self.result.seen >= self.limit:
            # Past the limit: held like the rest, and put back with them.
            return
        self.result.seen += 1
        # One channel consumes at a time: two at once would interleave their deliveries, and
        # the pass would see the queue out of its order.
        if self._held[channel] == CHANNEL_HOLDS and self.result.seen < self.limit:
            self._open_channel()
        properties = BasicProperties()
        properties.decode(encoded)
        try:
            if self.visit(Delivery(tag, routing_key, properties, body)):
                self._take.append((channel, tag))
        except Exception as exc:
            self._fail(exc)
            return
        if self.result.seen >= self.limit:
            self._end()

    def _tick(self) -> None:
        if self._ending or self._connection.is_closed:
            return
        if time.monotonic() - self._last_delivery > IDLE_SECONDS:
            self.result.stopped = f"{self.queue!r} had no more ready messages"
            self._end()
            return
        self._connection.ioloop.call_later(TICK_SECONDS, self._tick)

    def _end(self) -> None:
        """Take what was chosen, then close: the broker puts everything else back."""
        self._ending = True
        if self._take:
            try:
                if self.before_taking is not None:
                    self.before_taking(len(self._take))
            except Exception as exc:
                self._fail(exc)
                return
            for channel, tag in self._take:
                self._channels[channel].basic_ack(tag)
            self.result.taken = len(self._take)
        self._close_channels()

    def _fail(self, exc: BaseException) -> None:
        """Nothing is taken: every message goes back."""
        self._error = exc
        self._ending = True
        self._take.clear()
        self._close_channels()

    def _close_channels(self) -> None:
        for channel in list(self._channels.values()):
            if channel.is_open:
                channel.close()
        if not self._channels and self._connection.is_open:
            self._connection.close()

    def _on_channel_closed(self, channel, reason) -> None:
        self._channels.pop(channel.channel_number, None)
        if not self._ending:
            self._ending = True
            self._take.clear()
            self.result.stopped = f"the broker closed the channel: {reason}"
            self._error = self._error or _refusal(self.queue, reason)
            self._close_channels()
        if not self._channels and self._connection.is_open:
            self._connection.close()

    def _on_closed(self, _connection, reason) -> None:
        if not self._ending:
            self.result.stopped = f"the connection closed: {reason}"
            self._error = self._error or WarrenError(
                f"The AMQP connection closed during the pass over {self.queue!r} ({reason}); "
                "every message it held went back to the queue."
            )
        self._connection.ioloop.stop()


def _refusal(queue: str, reason) -> WarrenError:
    code, text = getattr(reason, "reply_code", None), getattr(reason, "reply_text", reason)
    error = NotFound if code == 404 else BrokerError
    return error(f"Queue {queue!r} cannot be read: {text}.")


def _taken_by_connection(*_delivery) -> None:
    """Deliveries go to `Sweep._on_delivery` through the connection, never to pika's consumer."""
