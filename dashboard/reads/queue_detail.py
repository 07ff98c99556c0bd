"""One queue in detail: the arguments that matter on call, and its counts over the last minutes
as the broker itself sampled them."""

from datetime import UTC, datetime

from pydantic import BaseModel

from dashboard.broker.models import QueueInfo, Rate
from dashboard.broker.session import Session
from dashboard.errors import ServerError

# What each argument means to the person on call, in the order they look for it.
ARGUMENT_LABELS = {
    "x-max-priority": "Max priority",
    "x-dead-letter-exchange": "Dead-letter exchange",
    "x-dead-letter-routing-key": "Dead-letter routing key",
    "x-max-length": "Max length (messages)",
    "x-max-length-bytes": "Max length (bytes)",
    "x-overflow": "On overflow",
    "x-message-ttl": "Message TTL (ms)",
    "x-expires": "Queue expires after idle (ms)",
    "x-delivery-limit": "Delivery limit",
    "x-single-active-consumer": "Single active consumer",
}


SETTINGS = {"columns": "name,vhost,type,arguments,effective_policy_definition"}


def queue_settings(session: Session, queue: str) -> QueueInfo:
    """A queue's type, arguments and policy (4.0 may answer a `columns=` GET with a list)."""
    raw = session.client.get_queue(session.vhost, queue, SETTINGS)
    return QueueInfo.model_validate(raw[0] if isinstance(raw, list) else raw)


# The broker's sampling step for the charts, in seconds.
BROKER_STEP = 10
# ... over this far back (its `basic` retention policy).
BROKER_SECONDS = 600


class CountSample(BaseModel):
    at: datetime
    ready: int
    unacked: int


class QueueDetail(BaseModel):
    info: QueueInfo
    samples: list[CountSample]

    @property
    def settings(self) -> list[tuple[str, str]]:
        """(label, value) of the queue's type, its members if it has any, and each argument,
        known ones first (with what a policy sets)."""
        info, effective = self.info, self.info.effective_arguments
        known = [
            (label, effective[key]) for key, label in ARGUMENT_LABELS.items() if key in effective
        ]
        other = [
            (key, value)
            for key, value in sorted(info.arguments.items())
            if key not in ARGUMENT_LABELS
        ]
        rows = [("Queue type", info.type), *self._members(), *known, *other]
        return [(label, str(value)) for label, value in rows]

    def _members(self) -> list[tuple[str, str]]:
        info = self.info
        if not info.members:
            return []
        offline = sorted(set(info.members) - set(info.online))
        return [
            ("Leader", info.leader or "none"),
            ("Members", ", ".join(sorted(info.members))),
            ("Members offline", ", ".join(offline) or "none"),
        ]


def fetch_queue_detail(
    session: Session, queue: str, seconds: int = 600, step: int = BROKER_STEP
) -> QueueDetail:
    """The queue's arguments and counts, with the broker's samples over the last `seconds`."""
    client = session.client
    raw = client.get_queue(
        session.vhost, queue, {"lengths_age": str(seconds), "lengths_incr": str(step)}
    )
    try:
        info = QueueInfo.model_validate(raw)
        ready = Rate.model_validate(raw.get("messages_ready_details", {})).by_second()
        unacked = Rate.model_validate(raw.get("messages_unacknowledged_details", {})).by_second()
    except ValueError:
        raise ServerError(
            f"Warren could not read queue {queue!r}: the answer does not have the expected shape."
        ) from None
    samples = [
        CountSample(at=datetime.fromtimestamp(at, UTC), ready=count, unacked=unacked[at])
        for at, count in sorted(ready.items())
        if at in unacked
    ]
    # Before its first statistics a new queue has no counts, and its samples are all padding.
    empty_now = info.counted and info.messages == 0
    return QueueDetail(info=info, samples=without_padding(samples, empty_now))


def without_padding(samples: list[CountSample], empty_now: bool) -> list[CountSample]:
    """The samples from the first that counts a message on: the broker fills its window with
    zeros from before it sampled the queue (before the queue existed, or its node started), and
    it cannot tell those from an empty queue, so a leading run of zeros is not counts anyone saw.
    When every sample is 0, the newest stays only if the queue is empty now (`empty_now`):
    else the samples lag behind a new queue's first messages."""
    first = next(
        (index for index, sample in enumerate(samples) if sample.ready or sample.unacked),
        len(samples) - 1 if empty_now else len(samples),
    )
    return samples[max(first, 0) :]
