"""A tenant queue's admin actions: purge, requeue its dead letters, republish with priority.
Each asks in a dialog with what it will touch; moves run as jobs with progress and a stop
button; every result gives exact counts."""

import time
from datetime import UTC, datetime

import streamlit as st

from dashboard.actions.audit import audit_log, count, readable
from dashboard.actions.moves import Moved
from dashboard.actions.purge import plan_purge, purge
from dashboard.actions.republish import plan_republish
from dashboard.actions.requeue import plan_requeue
from dashboard.broker.session import Session
from dashboard.reads.models import TenantRow
from pages.components.actions import (
    close_dialog,
    closer,
    confirm_move,
    console_actor,
    current_job,
    dialog_button,
    move_progress,
    stopped_words,
    typed_and_pressed,
)
from pages.components.errors import or_error
from pages.components.formatting import literal
from pages.components.state import after_action, shared_access

DESTINATIONS = ("this queue", "another queue", "the tenant exchange")
INTERRUPTED_SHOWN_SECONDS = 24 * 3600


def show_actions(session: Session, row: TenantRow) -> None:
    show_interrupted(session, row)
    access = shared_access(session)
    if not access.may_act:
        st.info(f"Read-only: {literal(access.refusal or '')}.", icon=":material/lock:")
        return
    st.caption(
        f"Actions are recorded in the audit log as {literal(console_actor(session))}, and ask "
        "before they change anything."
    )
    done = st.session_state.pop(f"purged-{row.queue}", None)
    if done is not None:
        st.success(f"Purged {count(done, 'ready message')} of {literal(row.queue)}.")
    show_requeue(session, row)
    show_republish(session, row)
    if access.may("purge") and dialog_button(
        "Purge ready messages", "purge", row.queue, ":material/delete_sweep:"
    ):
        purge_dialog(session, row.queue)


def show_interrupted(session: Session, row: TenantRow) -> None:
    """Moves on this tenant's queues whose process died (a console or CLI killed mid-move): as
    the audit log has them, never as a progress bar that stopped moving."""
    targets = {row.queue, *([row.dead_letter_queue] if row.dead_letter_queue else [])}
    since = time.time() - INTERRUPTED_SHOWN_SECONDS
    records = or_error(lambda: audit_log(session.settings).interrupted_on(targets, since))
    for record in records or []:
        started = datetime.fromtimestamp(record.started_at, UTC).strftime("%H:%M:%S UTC")
        st.warning(
            f"The {record.action} of {literal(record.target)} started at {started} by "
            f"{literal(record.actor)} did not finish. {literal(record.error or '')} Counts "
            f"then: {literal(readable(record.counts) or 'none reported')}.",
            icon=":material/running_with_errors:",
        )


def show_requeue(session: Session, row: TenantRow) -> None:
    job = current_job("requeue", row.queue)
    if job is not None:
        move_progress(job.id, requeued, lambda: after_action(session, row.queue))
    if not row.dead_letter_queue or (job is not None and not job.done):
        return
    # Counted now over AMQP, and the dialog acts on at most this many: what the button says is
    # what it does.
    dead = or_error(lambda: session.ready_count(row.dead_letter_queue))
    if dead:
        label = f"Requeue {count(dead, 'dead letter')}"
        if dialog_button(label, "requeue", row.queue, ":material/replay:"):
            requeue_dialog(session, row.queue, row.dead_letter_queue, dead)


def requeued(moved: Moved) -> tuple[bool, str]:
    result = moved.result
    return moved.clean, (
        f"Requeued {count(result.moved, 'dead letter')}; {result.failed + result.skipped:,} "
        "stayed in the dead-letter queue."
        + literal(moved.doubled_words("the dead-letter queue"))
        + stopped_words(result)
    )


@st.dialog("Requeue dead letters", on_dismiss=closer("requeue"))
def requeue_dialog(session: Session, queue: str, dead_letter_queue: str, shown: int) -> None:
    rate = rate_input(f"requeue-rate-{queue}")
    plan = or_error(lambda: plan_requeue(session, dead_letter_queue, None, shown, rate=rate))
    if plan is not None:
        confirm_move(session, queue, plan)


def show_republish(session: Session, row: TenantRow) -> None:
    job = current_job("republish", row.queue)
    if job is not None:
        move_progress(job.id, republished, lambda: after_action(session))
    if dialog_button("Republish with priority", "republish", row.queue, ":material/low_priority:"):
        republish_dialog(session, row)


def republished(moved: Moved) -> tuple[bool, str]:
    result, holding = moved.result, moved.holding
    left = f" {result.failed:,} stayed where they were." if result.failed else ""
    held = (
        f" Some messages wait in holding queue {literal(holding)}: requeue them from there."
        if holding
        else ""
    )
    return moved.clean, (
        f"Republished {count(result.moved, 'message')}.{literal(moved.held_words())}{left}{held}"
        f"{literal(moved.doubled_words('the queue'))}"
        f"{stopped_words(result)}"
    )


@st.dialog("Republish with priority", on_dismiss=closer("republish"))
def republish_dialog(session: Session, row: TenantRow) -> None:
    priority = st.number_input(
        "Priority", min_value=0, max_value=255, value=9, key=f"republish-priority-{row.queue}"
    )
    where = st.radio("To", DESTINATIONS, horizontal=True, key=f"republish-to-{row.queue}")
    to = routing_key = None
    if where == "another queue":
        to = st.text_input("Queue", placeholder="queue name") or None
    elif where == "the tenant exchange":
        routing_key = st.text_input("Routing key", value=row.tenant) or None
    limit = st.number_input("At most (0: every ready message)", min_value=0, value=0)
    rate = rate_input(f"republish-rate-{row.queue}")
    if where != "this queue" and not (to or routing_key):
        st.info("Name where the copies go.")
        return
    to = to or (row.queue if where == "this queue" else None)
    plan = or_error(
        lambda: plan_republish(
            session, row.queue, int(priority), to, routing_key, int(limit) or None, rate
        )
    )
    if plan is not None:
        confirm_move(session, row.queue, plan)


def rate_input(key: str) -> float | None:
    """A redrive's throttle, so that it does not flatten a consumer that is just recovering."""
    rate = st.number_input("At most this many a second (0: no limit)", min_value=0, key=key)
    return float(rate) or None


@st.dialog("Purge ready messages", on_dismiss=closer("purge"))
def purge_dialog(session: Session, queue: str) -> None:
    plan = or_error(lambda: plan_purge(session, queue))
    if plan is None:
        return
    st.markdown(literal(plan.sentence))
    if typed_and_pressed(queue, "Purge", "purge"):
        purged = or_error(lambda: purge(session, plan, console_actor(session)))
        if purged is None:
            return
        st.session_state[f"purged-{queue}"] = purged
        close_dialog("purge")
        after_action(session)
        st.rerun()
