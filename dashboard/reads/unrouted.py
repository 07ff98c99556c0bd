"""Messages the tenant exchange could not route: a tenant whose producers went live before
anyone onboarded it.

A direct exchange drops a message that no queue is bound to take, silently. Its statistics
count the message in (`publish_in`) and not out (`publish_out`): the difference is what it
dropped since the broker's statistics began (a node's restart starts them again). Captured:
Warren's capture (actions/capture.py) sets an alternate exchange on the tenant exchange by
policy, so that such messages reach a bounded capture queue instead, with their routing key,
the tenant id, kept. Listing the captured ids reads the capture queue's messages and leaves
every one there, in its order (they come back marked redelivered).
"""

from collections import Counter
from typing import NamedTuple

from dashboard.broker.models import ExchangeInfo
from dashboard.broker.session import Session
from dashboard.errors import NotFound
from dashboard.reads.models import CapturedId, Unrouted
from dashboard.reads.overview import tenant_bindings, tenant_exchange

# The capture queue's bound, and so the most messages a listing of its ids reads.
CAPTURE_MAX_MESSAGES = 10_000
BROWSE_IDLE_SECONDS = 1.0


class CaptureNames(NamedTuple):
    exchange: str
    queue: str
    policy: str


def capture_names(tenant_exchange: str) -> CaptureNames:
    captured = f"{tenant_exchange}.unrouted"
    return CaptureNames(captured, captured, f"warren-capture-{tenant_exchange}")


def tenant_exchange_info(session: Session) -> ExchangeInfo:
    """The tenant exchange: its arguments, the policy in force on it, its publish counts."""
    return ExchangeInfo.model_validate(
        tenant_exchange(session.client, session.vhost, session.exchange)
    )


def fetch_unrouted(
    session: Session, list_ids: bool = True, exchange: ExchangeInfo | None = None
) -> Unrouted:
    """The tenant exchange's dropped count and Warren's capture (from `exchange`, read here
    when not given); with `list_ids`, the captured messages by routing key (read from the
    capture queue and left there), each with the queue its tenant is bound to, if any."""
    exchange = exchange or tenant_exchange_info(session)
    names = capture_names(session.exchange)
    stats = exchange.message_stats
    unrouted = Unrouted(
        exchange=session.exchange,
        dropped=max(0, stats.publish_in - stats.publish_out) if stats else 0,
        policy=exchange.policy,
        capturing=exchange.policy == names.policy,
        capture_queue=names.queue,
    )
    try:
        # The management API's count (a poll reads it every time; asking AMQP for a queue
        # that is not there would close a channel each time): exact counts are the actions'.
        listed = session.client.get_queue(session.vhost, names.queue, {})
    except NotFound:
        return unrouted
    unrouted.captured = int(listed.get("messages_ready") or 0)
    if list_ids:
        unrouted.captured = session.ready_count(names.queue)
    if list_ids and unrouted.captured:
        ids = captured_ids(session, names.queue, unrouted.captured)
        bound: dict[str, str] = {}
        for binding in sorted(tenant_bindings(session), key=lambda b: b.destination):
            bound.setdefault(binding.routing_key, binding.destination)
        unrouted.ids = [
            CapturedId(routing_key=key, messages=messages, bound_to=bound.get(key))
            for key, messages in ids.most_common()
        ]
    return unrouted


def unrouted_sentence(unrouted: Unrouted) -> str:
    """What every face says first: dropped, and captured."""
    dropped = (
        f"Exchange {unrouted.exchange!r} dropped {unrouted.dropped:,} messages that no tenant "
        "was bound to take (since the broker's statistics began)."
        if unrouted.dropped
        else f"Exchange {unrouted.exchange!r} dropped no message for want of a binding."
    )
    if unrouted.capturing:
        return (
            f"{dropped} It is capturing them now: queue {unrouted.capture_queue!r} holds "
            f"{unrouted.captured or 0:,}."
        )
    if unrouted.captured:
        held = f"queue {unrouted.capture_queue!r} still holds {unrouted.captured:,}"
        return f"{dropped} Not capturing; {held}."
    return f"{dropped} Not capturing."


def captured_ids(session: Session, queue: str, ready: int) -> Counter:
    """The routing keys of the first `ready` messages of `queue` (at most the capture's bound),
    counted. They are taken unacked and go back, in their order, when the channel closes; a
    crash in between returns them the same way."""
    wanted = min(ready, CAPTURE_MAX_MESSAGES)

    def read(channel) -> Counter:
        keys: Counter = Counter()
        channel.basic_qos(prefetch_count=wanted)
        for method, _properties, _body in channel.consume(
            queue, inactivity_timeout=BROWSE_IDLE_SECONDS
        ):
            if method is None:
                break
            keys[method.routing_key] += 1
            if sum(keys.values()) >= wanted:
                break
        return keys

    # Closing the channel puts every message read back.
    return session.on_channel(read, f"Capture queue {queue!r} cannot be read")
