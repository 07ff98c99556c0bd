"""A tenant queue's admin actions: purge, requeue its dead letters, republish with priority.
Each asks in a dialog with what it will touch; moves run as jobs with progress and a stop
button; every result gives exact counts."""

import streamlit as st

from dashboard.errors import WarrenError
from dashboard.models import TenantRow
from dashboard.mover import MoveResult
from dashboard.purge import plan_purge, purge_audited
from dashboard.republish import plan_republish, republish_audited
from dashboard.requeue import plan_requeue, requeue_audited
from dashboard.settings import Settings
from pages.components.actions import (
    close_dialog,
    closer,
    console_actor,
    current_job,
    dialog_button,
    move_progress,
    start_move,
    stopped_words,
)
from pages.components.formatting import literal
from pages.components.state import shared_access, shared_client

DESTINATIONS = ("this queue", "another queue", "the tenant exchange")


def show_actions(settings: Settings, row: TenantRow) -> None:
    access = shared_access(settings)
    if not access.may_act:
        st.info(f"Read-only: {literal(access.refusal or '')}.", icon=":material/lock:")
        return
    st.caption(
        f"Actions are recorded in the audit log as {literal(console_actor(settings))}, and ask "
        "before they change anything."
    )
    done = st.session_state.pop(f"purged-{row.queue}", None)
    if done is not None:
        st.success(f"Purged {done:,} ready messages of {literal(row.queue)}.")
    show_requeue(settings, row)
    show_republish(settings, row)
    if dialog_button("Purge ready messages", "purge", row.queue, ":material/delete_sweep:"):
        purge_dialog(settings, row.queue)


def show_requeue(settings: Settings, row: TenantRow) -> None:
    job = current_job("requeue", row.queue)
    if job is not None:
        move_progress(job.id, requeued)
    elif row.dead_letter_queue and row.dead_letters:
        label = f"Requeue {row.dead_letters:,} dead letters"
        if dialog_button(label, "requeue", row.queue, ":material/replay:"):
            requeue_dialog(settings, row.queue, row.dead_letter_queue)


def requeued(result: MoveResult) -> tuple[bool, str]:
    return result.clean, (
        f"Requeued {result.moved:,} dead letters; {result.failed + result.skipped:,} stayed in "
        "the dead-letter queue." + stopped_words(result)
    )


@st.dialog("Requeue dead letters", on_dismiss=closer("requeue"))
def requeue_dialog(settings: Settings, queue: str, dead_letter_queue: str) -> None:
    try:
        plan = plan_requeue(settings, dead_letter_queue, None, None)
    except WarrenError as exc:
        st.error(literal(str(exc)))
        return
    st.markdown(literal(plan.sentence))
    if st.button("Requeue", type="primary", key=f"requeue-go-{queue}"):
        actor = console_actor(settings)
        start_move(
            "requeue", queue, plan.limit,
            lambda progress, cancel: requeue_audited(settings, plan, actor, progress, cancel),
        )  # fmt: skip


def show_republish(settings: Settings, row: TenantRow) -> None:
    job = current_job("republish", row.queue)
    if job is not None:
        move_progress(job.id, republished)
    if dialog_button("Republish with priority", "republish", row.queue, ":material/low_priority:"):
        republish_dialog(settings, row)


def republished(outcome: tuple[MoveResult, str | None]) -> tuple[bool, str]:
    result, holding = outcome
    left = f" {result.failed:,} stayed where they were." if result.failed else ""
    held = (
        f" Some messages wait in holding queue {literal(holding)}: requeue them from there."
        if holding
        else ""
    )
    return result.clean and not holding, (
        f"Republished {result.moved:,} messages.{left}{held}{stopped_words(result)}"
    )


@st.dialog("Republish with priority", on_dismiss=closer("republish"))
def republish_dialog(settings: Settings, row: TenantRow) -> None:
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
    if where != "this queue" and not (to or routing_key):
        st.info("Name where the copies go.")
        return
    try:
        plan = plan_republish(
            settings, shared_client(settings), row.queue, int(priority),
            to or (row.queue if where == "this queue" else None), routing_key, int(limit) or None,
        )  # fmt: skip
    except WarrenError as exc:
        st.error(literal(str(exc)))
        return
    st.markdown(literal(plan.sentence))
    if st.button("Republish", type="primary", key=f"republish-go-{row.queue}"):
        actor = console_actor(settings)
        start_move(
            "republish", row.queue, plan.limit,
            lambda progress, cancel: republish_audited(settings, plan, actor, progress, cancel),
        )  # fmt: skip


@st.dialog("Purge ready messages", on_dismiss=closer("purge"))
def purge_dialog(settings: Settings, queue: str) -> None:
    try:
        plan = plan_purge(settings, queue)
    except WarrenError as exc:
        st.error(literal(str(exc)))
        return
    st.markdown(literal(plan.sentence))
    typed = st.text_input(f"Type {literal(queue)} to confirm", key=f"purge-confirm-{queue}")
    if st.button("Purge", type="primary", disabled=typed != queue, key=f"purge-go-{queue}"):
        try:
            purged = purge_audited(settings, queue, console_actor(settings))
        except WarrenError as exc:
            st.error(literal(str(exc)))
            return
        st.session_state[f"purged-{queue}"] = purged
        close_dialog("purge")
        st.rerun()
