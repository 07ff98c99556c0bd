"""Browse and export, audited: a pass over a queue shows (or writes out) payloads, so each is in
the audit log with the selection it used; on a quorum queue it counts a delivery against every
message it holds, so there it is a change, confirmed first, by a user who may act."""

from typing import IO

from dashboard.actions.access import access_of, touching
from dashboard.broker.session import Session
from dashboard.errors import ConfirmationRequired
from dashboard.reads.dead_letters import Browse, browse_letters, export_letters
from dashboard.reads.peek import PeekPlan
from dashboard.reads.selection import Selection


def browse(
    session: Session,
    plan: PeekPlan,
    selection: Selection,
    actor: str,
    offset: int = 0,
    size: int = 50,
    header: str | None = None,
    confirmed: bool = False,
) -> Browse:
    """One pass over the plan's queue: the tally of what the selection matches, and a page of
    it from match `offset`."""
    _confirm(session, plan, confirmed, "browse")
    parameters = _parameters(session, selection) | {"offset": offset, "size": size}
    parameters |= {"header": header} if header else {}
    with touching(
        session, actor, "browse", plan.queue, parameters, plan.counts_deliveries
    ) as entry:
        result = browse_letters(session, plan, selection, offset, size, header)
        _mark(session, plan)
        entry.counts = {"seen": result.seen, "matching": result.matching, "shown": len(result.page)}
    return result


def export(
    session: Session,
    plan: PeekPlan,
    selection: Selection,
    out: IO[str],
    actor: str,
    confirmed: bool = False,
) -> int:
    """The matching messages of the plan's queue as JSON lines to `out`; how many."""
    _confirm(session, plan, confirmed, "export")
    parameters = _parameters(session, selection)
    with touching(
        session, actor, "export", plan.queue, parameters, plan.counts_deliveries
    ) as entry:
        written = export_letters(session, plan.queue, selection, out)
        _mark(session, plan)
        entry.counts = {"exported": written}
    return written


def _confirm(session: Session, plan: PeekPlan, confirmed: bool, verb: str) -> None:
    if plan.counts_deliveries and not confirmed and access_of(session).may_act:
        raise ConfirmationRequired(f"{plan.cost_sentence(verb)} Confirm to {verb} anyway.")


def _parameters(session: Session, selection: Selection) -> dict:
    chosen = selection.model_dump(exclude_defaults=True)
    return {"vhost": session.vhost} | ({"filter": chosen} if chosen else {})


def _mark(session: Session, plan: PeekPlan) -> None:
    """A pass on a quorum queue changed delivery counts; and the returns land after it."""
    if plan.counts_deliveries:
        session.changed(plan.queue)
