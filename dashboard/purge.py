"""Purge: drop every ready message of a queue. Messages held unacked by consumers are not
touched: they stay with their consumers (and return to ready if those die)."""

from pydantic import BaseModel

from dashboard.access import change
from dashboard.amqp import on_channel, queue_counts
from dashboard.settings import Settings


class PurgePlan(BaseModel):
    queue: str
    ready: int
    consumers: int

    @property
    def sentence(self) -> str:
        held = (
            f" Messages its {self.consumers:,} consumers hold unacked are not touched."
            if self.consumers
            else ""
        )
        return f"Purge deletes the {self.ready:,} ready messages of {self.queue!r} for good.{held}"


def plan_purge(settings: Settings, queue: str) -> PurgePlan:
    ready, consumers = queue_counts(settings, queue)
    return PurgePlan(queue=queue, ready=ready, consumers=consumers)


def purge(settings: Settings, queue: str) -> int:
    """Purge `queue`; the exact number of messages the broker deleted."""
    return on_channel(
        settings,
        "warren-purge",
        lambda channel: channel.queue_purge(queue).method.message_count,
        f"Queue {queue!r} cannot be purged",
    )


def purge_audited(settings: Settings, queue: str, actor: str) -> int:
    """Purge `queue` with its audit record (for callers that confirmed it already)."""
    with change(settings, actor, "purge", queue, {"vhost": settings.vhost}) as entry:
        entry.counts = {"purged": purge(settings, queue)}
    return entry.counts["purged"]
