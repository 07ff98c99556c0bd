"""Onboarding: bind one tenant or a pasted list / CSV of them, each with its own result; and
offboarding, which unbinds and may delete the tenant's queue."""

from functools import partial

import streamlit as st

from dashboard.actions.audit import count
from dashboard.actions.bind import (
    TENANT_RULE,
    BindResult,
    TenantSpec,
    bind,
    bind_sentence,
    parse_tenant_list,
)
from dashboard.actions.capture import (
    capture,
    moved_captured_sentence,
    plan_capture,
    plan_move_captured,
)
from dashboard.actions.unbind import unbind, unbind_sentence
from dashboard.errors import TenantExchangeMissing
from dashboard.reads.models import Unrouted
from dashboard.reads.unrouted import fetch_unrouted, unrouted_sentence
from pages.components.actions import (
    close_dialog,
    closer,
    confirm_move,
    console_actor,
    current_job,
    dialog_button,
    move_progress,
)
from pages.components.blocks import fitted_table
from pages.components.errors import or_error
from pages.components.formatting import literal
from pages.components.server_guards import accept_uploads
from pages.components.state import (
    after_action,
    current_session,
    shared_access,
    shared_overview_poll,
)

RESULTS = "onboarding-results"
UNBOUND = "offboarding-result"
# The capture queue's ids as last read: reading them marks every captured message redelivered,
# so only on request, and after a bind.
CAPTURED = "onboarding-captured"
# Tenant id -> the plan of the move of its captured messages started on this page.
MOVES = "onboarding-captured-moves"
RESULT_COLUMNS = {
    "tenant": st.column_config.TextColumn("Tenant"),
    "queue": st.column_config.TextColumn("Queue"),
    "outcome": st.column_config.TextColumn("Outcome"),
    "created": st.column_config.TextColumn("Created"),
    "error": st.column_config.TextColumn("Error"),
}

session = current_session()
settings = session.settings
st.title("Onboarding")
st.caption(
    f"A tenant is a queue bound to {literal(settings.tenant_exchange)} with routing key = tenant "
    f"id. Tenant ids: {literal(TENANT_RULE)}. Every change asks first and is recorded in the "
    f"audit log as {literal(console_actor(session))}."
)


def wanted_ids() -> list[str]:
    pasted = st.text_area(
        "Tenant ids", placeholder="one per line, or CSV with the id in the first column",
        key="bind-ids",
    )  # fmt: skip
    accept_uploads()
    uploaded = st.file_uploader("or a CSV file", type=["csv", "txt"], key="bind-file")
    text = pasted + "\n" + (uploaded.getvalue().decode(errors="replace") if uploaded else "")
    return parse_tenant_list(text)


def wanted_specs(tenants: list[str]) -> list[TenantSpec]:
    kind, priority, dead_letters = st.columns(3)
    queue_type = kind.radio("Queue type", ["classic", "quorum"], horizontal=True)
    max_priority = priority.number_input(
        "x-max-priority (classic; 0: none)", min_value=0, max_value=255, value=10,
        disabled=queue_type == "quorum",
    )  # fmt: skip
    with_dead_letters = dead_letters.checkbox("Dead-letter queue", value=True)
    return [
        TenantSpec(
            tenant=tenant,
            queue_type=queue_type,
            max_priority=int(max_priority) or None,
            dead_letters=with_dead_letters,
        )
        for tenant in tenants
    ]


@st.dialog("Bind tenants", on_dismiss=closer("bind"))
def bind_dialog(specs: list[TenantSpec]) -> None:
    st.markdown(literal(bind_sentence(specs, settings.tenant_exchange)))
    st.caption("What exists and matches is left as it is; a difference is refused, per tenant.")
    if st.button(f"Bind {count(len(specs), 'tenant')}", type="primary", key="bind-go"):
        bar = st.progress(0.0)
        done: list[BindResult] = []

        def tick(result: BindResult) -> None:
            done.append(result)
            bar.progress(len(done) / len(specs), text=f"{len(done):,} of {len(specs):,}")

        st.session_state[RESULTS] = bind(session, specs, console_actor(session), tick)
        read_captured()
        close_dialog("bind")
        st.rerun()


def show_bind_results() -> None:
    results: list[BindResult] | None = st.session_state.get(RESULTS)
    if not results:
        return
    failed = sum(result.outcome == "failed" for result in results)
    summary = f"{len(results) - failed:,} of {count(len(results), 'tenant')} bound"
    (st.warning if failed else st.success)(
        summary + (f"; {failed:,} failed (see the error column)." if failed else ".")
    )
    rows = [
        r.model_dump() | {"created": ", ".join(r.created), "error": r.error or ""} for r in results
    ]
    fitted_table(rows, RESULT_COLUMNS)


def read_captured() -> None:
    st.session_state[CAPTURED] = or_error(lambda: fetch_unrouted(session))


@st.dialog("Capture unrouted messages", on_dismiss=closer("capture"))
def capture_dialog() -> None:
    plan = or_error(lambda: plan_capture(session))
    if plan is None:
        return
    st.markdown(literal(plan.sentence))
    captured = st.button("Capture", type="primary", key="capture-go") and or_error(
        lambda: capture(session, plan, console_actor(session))
    )
    if captured is not None and captured is not False:
        close_dialog("capture")
        st.rerun()


@st.dialog("Move captured messages", on_dismiss=closer("move-captured"))
def move_captured_dialog(tenant: str) -> None:
    plan = or_error(lambda: plan_move_captured(session, tenant))
    if plan is not None:
        st.session_state.setdefault(MOVES, {})[tenant] = plan
        confirm_move(session, tenant, plan)


def unrouted_now() -> Unrouted | None:
    """None without a tenant exchange: nothing was published to it (binding declares it)."""
    try:
        return fetch_unrouted(session, list_ids=False)
    except TenantExchangeMissing:
        return None


def show_unrouted() -> None:
    """What the tenant exchange dropped or captured: ids that published before onboarding."""
    unrouted = or_error(unrouted_now)
    if unrouted is None:
        return
    st.subheader("Published before onboarding")
    st.markdown(literal(unrouted_sentence(unrouted)))
    if not unrouted.capturing and dialog_button(
        "Capture unrouted messages…", "capture", "exchange", ":material/call_split:"
    ):
        capture_dialog()
    show_moves()
    if unrouted.captured and st.button("List the captured tenant ids", key="list-captured"):
        read_captured()
    listed: Unrouted | None = st.session_state.get(CAPTURED)
    if listed:
        show_captured(listed)


def show_moves() -> None:
    """The moves of captured messages started here: progress, then their exact result."""
    for tenant, plan in st.session_state.get(MOVES, {}).items():
        job = current_job("move-captured", tenant)
        if job is not None:
            move_progress(
                job.id,
                lambda moved, plan=plan: (
                    moved.clean,
                    moved_captured_sentence(session, plan, moved),
                ),
                partial(after_moving, plan.to),
            )


def show_captured(listed: Unrouted) -> None:
    for captured in listed.ids:
        tenant = captured.routing_key
        job = current_job("move-captured", tenant)
        if job is not None and not job.done:
            continue
        line = f"{literal(tenant)}: {count(captured.messages, 'captured message')}"
        if captured.bound_to is None:
            st.markdown(f"{line}; onboard it to move them into its queue.")
        elif dialog_button(
            f"{line}: move them into its queue…", "move-captured", tenant, ":material/move_down:"
        ):
            move_captured_dialog(tenant)


def after_moving(queue: str) -> None:
    after_action(session, queue)
    read_captured()


@st.dialog("Offboard a tenant", on_dismiss=closer("unbind"))
def unbind_dialog(tenant: str, delete: bool, force: bool) -> None:
    st.markdown(literal(unbind_sentence(settings.tenant_exchange, tenant, delete, force)))
    typed = st.text_input(f"Type {literal(tenant)} to confirm", key="unbind-confirm")
    if st.button("Offboard", type="primary", disabled=typed != tenant, key="unbind-go"):
        result = or_error(lambda: unbind(session, tenant, delete, force, console_actor(session)))
        if result is None:
            return
        deleted = (
            f" Deleted {', '.join(result.deleted)} ({count(result.dropped, 'message')} dropped)."
            if result.deleted
            else ""
        )
        st.session_state[UNBOUND] = f"Unbound {tenant} from {', '.join(result.queues)}.{deleted}"
        close_dialog("unbind")
        st.rerun()


def show_offboarding() -> None:
    snapshot = shared_overview_poll(session).get()
    tenants = sorted({row.tenant for row in snapshot.data.rows}) if snapshot.data else []
    if not tenants:
        st.info("No tenant is bound yet (or the broker is not answering): nothing to offboard.")
        return
    tenant = st.selectbox("Tenant", tenants, index=None, placeholder="pick a tenant")
    may_delete = access.may("unbind", {"delete_queue": True})
    delete = st.checkbox(
        "Also delete its queue (refused while it holds messages)",
        disabled=not may_delete,
        help=None if may_delete else access.refusal_for("unbind", {"delete_queue": True}),
    )
    force = st.checkbox("Even with messages in it (they are dropped)", disabled=not delete)
    if tenant and dialog_button("Offboard…", "unbind", tenant, ":material/link_off:"):
        unbind_dialog(tenant, delete, delete and force)


access = shared_access(session)
if not access.may_act:
    st.info(f"Read-only: {literal(access.refusal or '')}.", icon=":material/lock:")
    st.stop()
bind_tab, unbind_tab = st.tabs(["Bind tenants", "Offboard"])
with bind_tab:
    ids = wanted_ids()
    specs = wanted_specs(ids)
    if not ids:
        st.info("Paste tenant ids or pick a CSV to bind them.")
    elif dialog_button(
        f"Bind {count(len(ids), 'tenant')}…", "bind", "tenants", ":material/add_link:"
    ):
        bind_dialog(specs)
    show_bind_results()
    show_unrouted()
with unbind_tab:
    message = st.session_state.pop(UNBOUND, None)
    if message:
        st.success(literal(message))
    show_offboarding()
