"""Requeue what a pod holds: close its connection, and the broker returns every message its
consumers hold unacked to ready. Closing is the only way over HTTP (channels cannot be closed
there). `warren requeue --connection` in the CLI, `requeue-connection` in the audit log."""

import time

from pydantic import BaseModel, Field

from dashboard.actions.access import change
from dashboard.actions.audit import count
from dashboard.actions.target_rules import (
    Arrival,
    arrival,
    loss_sentence,
    queue_rules,
    refuse_loss,
)
from dashboard.broker.models import QueueInfo
from dashboard.broker.session import Session
from dashboard.errors import NotFound, WarrenError
from dashboard.reads.consumers import fetch_consumers
from dashboard.reads.models import ConsumerReport
from dashboard.reads.peek import delivery_limit_sentence
from dashboard.reads.queue_detail import queue_settings

# How long the broker may take to put a closed channel's messages back.
RETURN_SECONDS = 3.0


class RequeueConnectionPlan(BaseModel):
    """A connection (pod) and the messages its consumers hold unacked."""

    connection: str
    connection_id: str
    unacked: int
    queues: list[str]
    # How long its longest-silent channel has gone without an ack, as the pages say it: for the
    # sentence, not the record (it changes by the second).
    no_ack_for: str | None = Field(default=None, exclude=True)
    # Those of `queues` that are quorum queues, each with its delivery limit in a sentence
    # (see `_quorum_queues`).
    quorum: dict[str, str] = Field(default_factory=dict)
    # Per queue: what its own rules would do with the messages returned to it.
    arrivals: list[Arrival] = Field(default_factory=list)

    @property
    def loses(self) -> int:
        """Messages the queues' rules would throw away for good."""
        return sum(arrival.lost for arrival in self.arrivals)

    @property
    def sentence(self) -> str:
        silent = f" (no ack for {self.no_ack_for})" if self.no_ack_for else ""
        sentence = (
            f"Requeue closes connection {self.connection!r}{silent}: the broker returns the "
            f"{count(self.unacked, 'message')} it holds unacked (from {', '.join(self.queues)}) to "
            "ready, and the pod must reconnect."
        )
        for queue, limit in self.quorum.items():
            sentence += (
                f" On quorum queue {queue} each message returned counts as a delivery: its "
                "x-delivery-count goes up by one, and past the queue's delivery limit the broker "
                f"dead-letters or drops it. {limit}"
            )
        for into in self.arrivals:
            if into.sentence:
                sentence += f" {into.sentence}"
        if self.loses:
            sentence += f" {loss_sentence(self.loses)}"
        return sentence


def plan_requeue_connection(session: Session, connection: str) -> RequeueConnectionPlan:
    """What `connection` (a pod's client-given name, or the broker's name for it) holds now,
    with the delivery limit of each quorum queue among them."""
    report = fetch_consumers(session)
    held = held_by(report, connection)
    infos = {queue: queue_settings(session, queue) for queue in held.queues}
    arrivals = [
        arrival(queue_rules(session, queue, infos[queue]), returning, returned=True)
        for queue, returning in _returning(report, held).items()
    ]
    return held.model_copy(update={"quorum": _quorum_queues(session, infos), "arrivals": arrivals})


def _returning(report: ConsumerReport, held: RequeueConnectionPlan) -> dict[str, int]:
    """Per queue, how many of the held messages go back to it: a channel's unacked count is
    its queue's when it consumes one queue; a channel on several counts for each (at most)."""
    loads = [load for load in report.loads if load.connection_id == held.connection_id]
    per_channel = {load.channel: (load.unacked, set()) for load in loads}
    for load in loads:
        per_channel[load.channel][1].add(load.queue)
    returning: dict[str, int] = {}
    for unacked, queues in per_channel.values():
        for queue in queues:
            returning[queue] = returning.get(queue, 0) + unacked
    return {queue: count for queue, count in returning.items() if count}


def requeue_connection(
    session: Session, plan: RequeueConnectionPlan, actor: str, force: bool = False
) -> dict[str, int]:
    """Close the connection that holds the messages, audited under the pod's name (for callers
    that confirmed it already): the broker returns them to ready. Refused when the queues' own
    rules would lose some, unless `force`. Each queue's ready count read afterwards."""
    parameters = plan.model_dump() | {"force": force}
    with change(session, actor, "requeue-connection", plan.connection, parameters) as entry:
        refuse_loss(plan.loses, force)
        session.client.close_connection(plan.connection_id, f"Closed by Warren for {actor}")
        session.changed(*plan.queues)
        ready_after = {queue: _ready_once_returned(session, queue) for queue in plan.queues}
        entry.counts = {"unacked_returned": plan.unacked} | {
            f"ready:{queue}": ready for queue, ready in ready_after.items()
        }
    return ready_after


def _ready_once_returned(session: Session, queue: str) -> int:
    """The queue's ready count once the broker has taken back what the closed channel held
    (it does so after it answers the close)."""
    deadline = time.monotonic() + RETURN_SECONDS
    ready = session.ready_count(queue)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        later = session.ready_count(queue)
        if later == ready:
            return ready
        ready = later
    return ready


def _quorum_queues(session: Session, infos: dict[str, QueueInfo]) -> dict[str, str]:
    """The quorum queues among `infos`, each with its delivery limit (a sentence)."""
    quorum = [info for info in infos.values() if info.type == "quorum"]
    version = session.broker_version() if quorum else None
    return {info.name: delivery_limit_sentence(info, version) for info in quorum}


def held_by(report: ConsumerReport, connection: str) -> RequeueConnectionPlan:
    """What `connection` (a pod's client-given name, or the broker's name for it) holds."""
    loads = [load for load in report.loads if connection in (load.connection, load.connection_id)]
    ids = {load.connection_id for load in loads}
    if not loads:
        raise NotFound(f"No consumer connection is named {connection!r}: nothing was changed.")
    if len(ids) > 1:
        raise WarrenError(
            f"{len(ids)} connections are named {connection!r}: name one by the broker's name "
            f"({', '.join(sorted(ids))}). Nothing was changed."
        )
    per_channel = {load.channel: load.unacked for load in loads}
    silences = [load for load in loads if load.acks_unchanged_since and load.unacked]
    longest = min(silences, key=lambda load: load.acks_unchanged_since, default=None)
    return RequeueConnectionPlan(
        connection=loads[0].connection,
        connection_id=ids.pop(),
        unacked=sum(per_channel.values()),
        queues=sorted({load.queue for load in loads}),
        no_ack_for=longest.no_ack_for if longest else None,
    )
