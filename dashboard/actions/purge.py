"""Purge: drop every ready message of a queue. Messages held unacked by consumers are not
touched: they stay with their consumers (and return to ready if those die)."""

from pydantic import BaseModel

from dashboard.actions.access import change
from dashboard.actions.audit import count
from dashboard.broker.session import Session


class PurgePlan(BaseModel):
    queue: str
    ready: int
    consumers: int

    @property
    def sentence(self) -> str:
        held = (
            f" Messages held unacked by its {count(self.consumers, 'consumer')} are not touched."
            if self.consumers
            else ""
        )
        ready = count(self.ready, "ready message")
        return f"Purge deletes the {ready} of {self.queue!r} for good.{held}"


def plan_purge(session: Session, queue: str) -> PurgePlan:
    ready, consumers = session.queue_counts(queue)
    return PurgePlan(queue=queue, ready=ready, consumers=consumers)


def purge(session: Session, plan: PurgePlan, actor: str) -> int:
    """Purge the plan's queue, audited (for callers that confirmed it already); the exact number
    of messages the broker deleted."""
    queue = plan.queue
    with change(session, actor, "purge", queue, {"vhost": session.vhost}) as entry:
        entry.counts = {
            "purged": session.on_channel(
                lambda channel: channel.queue_purge(queue).method.message_count,
                f"Queue {queue!r} cannot be purged",
            )
        }
        session.changed(queue)
    return entry.counts["purged"]
