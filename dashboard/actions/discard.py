"""Discard: delete for good the messages of a queue that a selection matches, and nothing else.

One pass holds every message (broker/sweep.py); once it has seen them all, the ids of those
matched go into the audit record, and only then are they acked, which deletes them. The others
go back to their places in order. A crash before the acks deletes nothing; after, the audit log
holds the ids of what went. A message without a message id is recorded by its body's digest.
"""

import hashlib

from pydantic import BaseModel

from dashboard.actions.access import change
from dashboard.actions.audit import count
from dashboard.broker.session import Session
from dashboard.broker.sweep import Delivery, Sweep
from dashboard.errors import WarrenError
from dashboard.reads.masking import Masking, masking_of
from dashboard.reads.selection import Selection


class DiscardPlan(BaseModel):
    queue: str
    ready: int
    selection: Selection

    @property
    def sentence(self) -> str:
        return (
            f"Discard deletes for good the messages of {self.queue!r} with "
            f"{self.selection.words}, found in one pass over its "
            f"{count(self.ready, 'ready message')}; the others stay, in their order. The ids "
            "of those deleted go into the audit log before they are deleted."
        )

    def parameters(self, vhost: str) -> dict:
        return {"vhost": vhost, "filter": self.selection.model_dump(exclude_defaults=True)}


class Discarded(BaseModel):
    queue: str
    discarded: int
    ids: list[str]
    ready_after: int


def plan_discard(session: Session, queue: str, selection: Selection) -> DiscardPlan:
    if not selection.active:
        raise WarrenError(
            "Discard takes a selection (a tenant, a reason, a header, message ids, text): to "
            "delete every ready message, purge the queue."
        )
    return DiscardPlan(queue=queue, ready=session.ready_count(queue), selection=selection)


def identity(delivery: Delivery, masking: Masking) -> str:
    """How the audit log names a deleted message: its id, else its body's digest (both as
    masking leaves them: the audit log is read by people too)."""
    message_id = delivery.properties.message_id
    if message_id is not None:
        return str(masking.masked_value(message_id))
    return f"sha256:{hashlib.sha256(masking.masked_body(delivery.body)).hexdigest()[:32]}"


def discard(session: Session, plan: DiscardPlan, actor: str) -> Discarded:
    """Run a confirmed plan, audited as `discard`."""
    ids: list[str] = []
    selection, masking = plan.selection, masking_of(session.settings)

    def visit(delivery: Delivery) -> bool:
        chosen = selection.matches(
            masking, delivery.properties, delivery.routing_key, delivery.body
        )
        if chosen:
            ids.append(identity(delivery, masking))
        return chosen

    with change(session, actor, "discard", plan.queue, plan.parameters(session.vhost)) as entry:

        def record_first(taking: int) -> None:
            entry.counts = {"discarding": taking, "ids": ids}
            entry.checkpoint()

        try:
            result = Sweep(session, plan.queue, plan.ready, visit, record_first).run()
        finally:
            session.changed(plan.queue)
        ready_after = result.ready_after
        entry.counts = {"discarded": result.taken, "ids": ids, "ready_after": ready_after}
    return Discarded(queue=plan.queue, discarded=result.taken, ids=ids, ready_after=ready_after)
