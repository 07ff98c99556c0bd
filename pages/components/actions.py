"""The pieces every admin action in the console shares: who acts, dialogs that stay open across
reruns until done or dismissed, and moves run as background jobs with progress and a stop
button."""

from collections.abc import Callable
from functools import partial
from typing import Any

import streamlit as st

from dashboard.actions.audit import count
from dashboard.actions.jobs import JOBS, Job
from dashboard.actions.mover import MoveResult, Progress
from dashboard.actions.moves import MovePlan, run_move
from dashboard.broker.session import Session
from pages.components.formatting import literal, typed_back


def console_actor(session: Session) -> str:
    """Who acts: the broker user, or the person signed in and the service user it acts as."""
    if session.person is not None:
        return f"{session.person.shown} (as {session.username}, console)"
    return f"{session.username} (console)"


def _open_key(dialog: str) -> str:
    return f"{dialog}-dialog-open"


def dialog_button(label: str, dialog: str, target: str, icon: str) -> bool:
    """A button that opens `dialog` for `target`; True while that dialog is to be shown (a
    dialog function is called on every rerun it stays open)."""
    if st.button(label, key=f"{dialog}-{target}", icon=icon):
        st.session_state[_open_key(dialog)] = target
    return st.session_state.get(_open_key(dialog)) == target


def close_dialog(dialog: str) -> None:
    st.session_state.pop(_open_key(dialog), None)


def closer(dialog: str) -> Callable[[], None]:
    """For `st.dialog(on_dismiss=...)`."""
    return partial(close_dialog, dialog)


def confirm_move(session: Session, queue: str, plan: MovePlan) -> None:
    """Inside a move's dialog: the plan's sentence and its button, which starts the move as the
    background job of the tenant queue `queue` and closes the dialog."""
    st.markdown(literal(plan.sentence))
    # A loss the target's own rules would cause needs a second, explicit yes.
    force = plan.loses > 0 and st.checkbox(
        f"Lose {count(plan.loses, 'message')} anyway", key=f"{plan.action}-force-{queue}"
    )
    if st.button(
        plan.action.capitalize(),
        type="primary",
        disabled=plan.loses > 0 and not force,
        key=f"{plan.action}-go-{queue}",
    ):
        actor = console_actor(session)
        _start_move(
            plan.action, queue, plan.limit,
            lambda progress, cancel: run_move(session, plan, actor, progress, cancel, force),
        )  # fmt: skip


def _start_move(action: str, queue: str, total: int, work: Callable[[Progress, Any], Any]) -> None:
    job = Job(f"{action} {queue}", work, total=total).start()
    st.session_state[f"job-{action}-{queue}"] = job.id
    close_dialog(action)
    st.rerun()


def current_job(action: str, queue: str) -> Job | None:
    return JOBS.get(st.session_state.get(f"job-{action}-{queue}", ""))


@st.fragment(run_every=1)
def move_progress(
    job_id: str, describe: Callable[[Any], tuple[bool, str]], on_end: Callable[[], None]
) -> None:
    """A running move's progress and stop button; once it ends, its exact counts, and
    `on_end` once (the page's numbers read again), with the page run again to show them."""
    job = JOBS[job_id]
    progress: MoveResult | None = job.progress
    moved = progress.moved if progress else 0
    if not job.done:
        st.progress(
            min(1.0, moved / job.total) if job.total else 0.0,
            text=f"{literal(job.title)}: {moved:,} of {job.total:,} moved",
        )
        if st.button("Stop", key=f"stop-{job_id}", icon=":material/stop_circle:"):
            job.cancel.set()
        return
    if not st.session_state.get(f"ended-{job_id}"):
        st.session_state[f"ended-{job_id}"] = True
        on_end()
        st.rerun()
    if job.error:
        st.error(literal(job.error))
        return
    clean, sentence = describe(job.result)
    (st.success if clean else st.warning)(sentence)


def stopped_words(result: MoveResult) -> str:
    return "" if result.clean else f" Stopped: {literal(result.stopped or 'unknown')}."


def typed_and_pressed(name: str, button: str, key: str) -> bool:
    """A destructive action's last step: `name` typed back, then its button pressed."""
    typed = st.text_input(f"Type {literal(name)} to confirm", key=f"{key}-confirm-{name}")
    return st.button(
        button, type="primary", disabled=not typed_back(typed, name), key=f"{key}-go-{name}"
    )
