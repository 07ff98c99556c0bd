"""Peek as a change: on a quorum queue every peek counts a delivery against each message it
shows, and past the queue's delivery limit the broker dead-letters or drops the message when it
is put back. So there a peek follows the rule of every action: only users who may act, after a
confirmation, audited, and its result says what the limit took, from the counts the broker sent.
A peek at a classic queue costs nothing lasting and stays a read, recorded too: it shows
payloads."""

from dashboard.actions.access import access_of, touching
from dashboard.actions.audit import count
from dashboard.broker.session import Session
from dashboard.errors import ConfirmationRequired
from dashboard.reads.peek import PeekPlan, PeekResult, fetch_messages


def peek(
    session: Session, plan: PeekPlan, count: int, actor: str, confirmed: bool = False
) -> PeekResult:
    """Up to `count` ready messages of the plan's queue, put back, audited. A quorum queue
    needs `confirmed` from a user who may act (one who may not is refused, with or without it)."""
    if plan.counts_deliveries and not confirmed and access_of(session).may_act:
        raise ConfirmationRequired(f"{plan.sentence} Confirm to peek anyway.")
    parameters = {"vhost": session.vhost, "count": count}
    with touching(session, actor, "peek", plan.queue, parameters, plan.counts_deliveries) as entry:
        result = fetch_messages(session, plan, count)
        entry.counts = {"peeked": len(result.messages)}
        if not plan.counts_deliveries:
            return result
        session.changed(plan.queue)
        result = _with_limit_taken(result, plan.delivery_limit)
        kept = len(result.messages) - result.past_limit
        result.ready_after = session.ready_once_back(plan.queue, kept)
        entry.counts |= {"past_limit": result.past_limit, "ready_after": result.ready_after}
    return result


def _with_limit_taken(result: PeekResult, limit: int | None) -> PeekResult:
    """A message that came with `limit` deliveries already went past the limit when the peek put
    it back; one that came with `limit - 1` is now at it. (The broker's count is that of earlier
    returns: 3.10 sends 0 on a first delivery, 4.0 sends nothing.)"""
    if limit is None:
        return result
    counts = [message.delivery_count or 0 for message in result.messages]
    result.past_limit = sum(delivered >= limit for delivered in counts)
    result.at_limit = sum(delivered == limit - 1 for delivered in counts)
    return result


def peek_sentence(plan: PeekPlan, result: PeekResult) -> str | None:
    """What a quorum peek did beyond showing messages, or None when it cost nothing lasting."""
    if not plan.counts_deliveries or plan.delivery_limit is None:
        return None
    shown = count(len(result.messages), "message")
    parts = [f"Each of the {shown} shown counted one delivery."]
    if result.past_limit:
        parts.append(
            f"{count(result.past_limit, 'message')} had reached the delivery limit of "
            f"{plan.delivery_limit} and went past it when put back: {plan.over_limit_fate}."
        )
    if result.at_limit:
        parts.append(
            f"{count(result.at_limit, 'message')} now at the limit: the next delivery (a "
            "peek, a consumer's reject, a pod dying) puts them past it."
        )
    parts.append(f"The queue holds {result.ready_after} ready now.")
    return " ".join(parts)
