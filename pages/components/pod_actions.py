"""Return a pod's unacked messages to ready, from the page where the pod shows: the same plan,
confirmation and audit record as `warren requeue --connection`."""

import time

import streamlit as st

from dashboard.actions.audit import count
from dashboard.actions.requeue_connection import plan_requeue_connection, requeue_connection
from dashboard.broker.session import Session
from dashboard.reads.models import PodLoad
from pages.components.actions import close_dialog, closer, console_actor, dialog_button
from pages.components.errors import or_error
from pages.components.formatting import literal, typed_back
from pages.components.state import after_action, shared_access

DIALOG = "requeue-connection"
DONE = "requeue-connection-done"
# The result stays this long: the pages that show it rerun on every poll.
SHOWN_SECONDS = 60


def show_returned() -> None:
    """The last return's result, for SHOWN_SECONDS: the page shows it where it shows the pods,
    which may be gone now."""
    done = st.session_state.get(DONE)
    if done is None:
        return
    sentence, at = done
    if time.monotonic() - at > SHOWN_SECONDS:
        st.session_state.pop(DONE)
    else:
        st.success(sentence)


def show_pod_returns(session: Session, pods: list[PodLoad], where: str) -> None:
    """A button for each stuck pod, and a picker for any other that holds messages (`where`
    tells one page's widgets apart). `pods` are whole: a return closes the connection, and
    the broker returns all it holds, from every queue."""
    holding = [pod for pod in pods if pod.unacked]
    if not holding:
        return
    access = shared_access(session)
    if not access.may_act:
        st.caption(f"Read-only: {literal(access.refusal or '')}.")
        return
    stuck = [pod for pod in holding if any(flag.kind == "stuck" for flag in pod.flags)]
    for pod in stuck:
        _return_button(
            session,
            pod,
            f"Return {literal(pod.connection)}'s {count(pod.unacked, 'unacked message')}",
            where,
        )
    others = [pod for pod in holding if pod not in stuck]
    if others:
        with st.expander("Return another pod's unacked messages"):
            by_id = {pod.connection_id: pod for pod in others}
            picked = st.selectbox(
                "Pod",
                list(by_id),
                format_func=lambda key: (
                    f"{by_id[key].connection} ({count(by_id[key].unacked, 'unacked message')})"
                ),
                key=f"return-pick-{where}",
            )
            pod = by_id[picked]
            _return_button(session, pod, f"Return {count(pod.unacked, 'unacked message')}", where)


def _return_button(session: Session, pod: PodLoad, label: str, where: str) -> None:
    if dialog_button(label, DIALOG, f"{where}:{pod.connection_id}", ":material/undo:"):
        return_dialog(session, pod.connection_id, pod.unacked)


@st.dialog("Return a pod's unacked messages", on_dismiss=closer(DIALOG))
def return_dialog(session: Session, connection_id: str, shown: int) -> None:
    plan = or_error(lambda: plan_requeue_connection(session, connection_id))
    if plan is None:
        return
    st.markdown(literal(plan.sentence))
    if plan.unacked != shown:
        st.caption(f"The page showed {shown:,} when it last polled: the broker holds these now.")
    # As the CLI asks at a terminal: the pod's name typed back.
    typed = st.text_input(
        f"Type {literal(plan.connection)} to confirm", key=f"{DIALOG}-confirm-{connection_id}"
    )
    # A loss the queues' own rules would cause needs a second, explicit yes.
    force = plan.loses > 0 and st.checkbox(
        f"Lose {count(plan.loses, 'message')} anyway", key=f"{DIALOG}-force-{connection_id}"
    )
    if st.button(
        "Requeue",
        type="primary",
        disabled=not typed_back(typed, plan.connection) or (plan.loses > 0 and not force),
        key=f"{DIALOG}-go-{connection_id}",
    ):
        actor = console_actor(session)
        ready_after = or_error(lambda: requeue_connection(session, plan, actor, force=force))
        if ready_after is None:
            return
        held = ", ".join(
            f"{literal(queue)} holds {ready:,} ready now" for queue, ready in ready_after.items()
        )
        sentence = (
            f"Closed {literal(plan.connection)}: {count(plan.unacked, 'message')} went back "
            f"to ready; {held}."
        )
        st.session_state[DONE] = (sentence, time.monotonic())
        close_dialog(DIALOG)
        after_action(session)
        st.rerun()
