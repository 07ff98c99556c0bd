"""The tenant page's dead letters: the whole dead-letter queue looked through in one pass
(what died, why, where and when), a page of what a search matches, and the actions on that
selection (or on the messages ticked): requeue, with a priority and a rate; discard; export."""

import io

import plotly.graph_objects as go
import streamlit as st

from dashboard.actions.audit import count
from dashboard.actions.browse import browse, export
from dashboard.actions.discard import discard, plan_discard
from dashboard.actions.moves import Moved
from dashboard.actions.publish import Published, plan_publish, publish
from dashboard.actions.requeue import plan_requeue
from dashboard.broker.session import Session
from dashboard.reads.dead_letters import Browse, Tally
from dashboard.reads.models import TenantRow
from dashboard.reads.peek import PeekPlan, plan_peek
from dashboard.reads.selection import Selection
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
from pages.components.blocks import fitted_table
from pages.components.charts import count_axis
from pages.components.errors import or_error
from pages.components.formatting import literal
from pages.components.peek_view import show_messages
from pages.components.server_guards import accept_uploads
from pages.components.state import after_action, shared_access
from pages.components.tenant_actions import rate_input

PAGE_SIZE = 20
TALLY_COLUMNS = {
    "value": st.column_config.TextColumn("Value"),
    "messages": st.column_config.NumberColumn("Messages", format="%d"),
}
PAGE_COLUMNS = {
    "position": st.column_config.NumberColumn("#", format="%d"),
    "message_id": st.column_config.TextColumn("Message id"),
    "reason": st.column_config.TextColumn("Reason"),
    "routing_key": st.column_config.TextColumn("Routing key"),
    "size": st.column_config.NumberColumn("Bytes", format="%d"),
    "shown": st.column_config.TextColumn("Body"),
}
TALLY_TITLES = {
    "by_reason": "By reason",
    "by_queue": "By queue it died in",
    "by_tenant": "By tenant (routing key)",
}


def show_dead_letters(session: Session, row: TenantRow) -> None:
    hidden = shared_access(session).payload_refusal()
    if hidden is not None:
        st.info(f"Payloads are hidden: {literal(hidden)}.")
    elif row.dead_letter_queue:
        show_look(session, row, row.dead_letter_queue)
    else:
        st.info("This tenant has no dead-letter queue: rejected and expired messages are dropped.")
    # Outside the expander, which closes when the page runs again.
    done = st.session_state.pop(f"replayed-{row.queue}", None)
    if done is not None:
        (st.success if done[0] else st.warning)(done[1])
    with st.expander("Replay an exported file"):
        show_replay(session, row)


def show_look(session: Session, row: TenantRow, dlq: str) -> None:
    # The selection's requeue is a job of the dead-letter queue: the Actions tab shows the
    # tenant's whole requeue, this tab its own.
    job = current_job("requeue", dlq)
    if job is not None:
        move_progress(job.id, requeued, lambda: _after(session, row.queue, dlq))
    done = st.session_state.pop(f"discarded-{dlq}", None)
    if done is not None:
        st.success(done)
    plan = or_error(lambda: plan_peek(session, dlq))
    if plan is None:
        return
    asked = _search_form(session, plan)
    if asked is not None:
        st.session_state[_key(dlq)] = asked
    query = st.session_state.get(_key(dlq))
    if query is None:
        st.caption(
            f"Looks through every message of {literal(dlq)} in one pass and puts each back in "
            "its place: they stay in the queue, in their order, marked redelivered."
        )
        return
    result = _browsed(session, plan, query)
    if result is not None:
        show_browse(session, row, result)


def _key(dlq: str) -> str:
    return f"dead-letters-{dlq}"


def _after(session: Session, *queues: str) -> None:
    """After an action on the dead letters: the page's numbers and the pass read again."""
    after_action(session, *queues)
    st.session_state.pop(f"{_key(queues[-1])}-result", None)


def _search_form(session: Session, plan: PeekPlan) -> dict | None:
    """The search as asked, once submitted: a selection, a header to count by, a page."""
    access = shared_access(session)
    with st.form(f"dead-letter-search-{plan.queue}"):
        reason, header, text = st.columns(3)
        chosen_reason = reason.selectbox(
            "Reason", ["any", "rejected", "expired", "maxlen", "delivery_limit"]
        )
        named = header.text_input("Header NAME=VALUE", placeholder="error=timeout")
        body = text.text_input("Text in the body")
        message_id, tenant, by_header = st.columns(3)
        wanted_id = message_id.text_input("Message id")
        wanted_tenant = tenant.text_input("Tenant (routing key it died with)")
        count_by = by_header.text_input("Also count by header", placeholder="error")
        confirmed = (
            plan.counts_deliveries
            and access.may_act
            and st.checkbox(
                "I accept the cost on this quorum queue", help=plan.cost_sentence("browse")
            )
        )
        if not st.form_submit_button("Look through", icon=":material/search:"):
            return None
    name, _, value = named.partition("=")
    selection = Selection(
        reason=None if chosen_reason == "any" else chosen_reason,
        header=name.strip() or None,
        value=value if name.strip() else None,
        text=body or None,
        message_ids=[wanted_id] if wanted_id else [],
        tenant=wanted_tenant or None,
    )
    return {
        "selection": selection,
        "header": count_by.strip() or None,
        "offset": 0,
        "confirmed": bool(confirmed),
    }


def _browsed(session: Session, plan: PeekPlan, query: dict) -> Browse | None:
    """The pass for `query`, made once per search or page: a rerun shows the same pass."""
    done = st.session_state.get(f"{_key(plan.queue)}-result")
    if done is not None and done[0] == query:
        return done[1]
    selection, header, offset = query["selection"], query["header"], query["offset"]
    actor = console_actor(session)
    result = or_error(
        lambda: browse(
            session, plan, selection, actor, offset, PAGE_SIZE, header, query["confirmed"]
        )
    )
    if result is not None:
        st.session_state[f"{_key(plan.queue)}-result"] = (dict(query), result)
    return result


def show_browse(session: Session, row: TenantRow, result: Browse) -> None:
    selection = result.selection
    chosen = f" with {literal(selection.words)}" if selection.active else ""
    st.caption(
        f"Looked through {count(result.seen, 'message')} of {literal(result.queue)} in "
        f"{result.seconds:.1f} s; all are still there, in their order. "
        f"{result.matching:,} match{chosen}; {result.tally.redriven:,} of them died again after "
        "a redrive." + (f" Stopped early: {literal(result.stopped)}." if result.stopped else "")
    )
    if result.past_limit:
        st.warning(
            f"{count(result.past_limit, 'message')} had reached the queue's delivery limit and "
            "went past it when this pass put them back.",
            icon=":material/warning:",
        )
    show_tally(result.tally)
    ticked = show_page(result)
    acting_on = Selection(message_ids=ticked) if ticked else selection
    how_many = len(ticked) if ticked else result.matching
    if how_many:
        show_selection_actions(session, row, acting_on, how_many, result)


def show_tally(tally: Tally) -> None:
    columns = st.columns(len(TALLY_TITLES) + bool(tally.header))
    titled = dict(TALLY_TITLES) | (
        {"by_header": f"By header {tally.header}"} if tally.header else {}
    )
    for column, (field, title) in zip(columns, titled.items(), strict=True):
        with column:
            st.caption(literal(title))
            rows = [{"value": v, "messages": n} for v, n in getattr(tally, field).items()]
            fitted_table(rows, TALLY_COLUMNS)
    if tally.by_minute:
        st.plotly_chart(deaths_figure(tally.by_minute), width="stretch")


def deaths_figure(by_minute: dict[str, int]) -> go.Figure:
    figure = go.Figure(go.Bar(x=list(by_minute), y=list(by_minute.values()), name="Died"))
    figure.update_layout(
        title="First deaths per minute",
        xaxis_title="Time (UTC)",
        yaxis_title="Messages",
        yaxis=count_axis(max(by_minute.values())),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        height=260,
    )
    return figure


def show_page(result: Browse) -> list[str]:
    """The page of matches; the message ids of the rows ticked."""
    if not result.page:
        st.info("No message matches." if not result.matching else "No match on this page.")
        return []
    rows = [
        {
            "position": message.position,
            "message_id": message.properties.get("message_id"),
            "reason": message.deaths[0].reason if message.deaths else None,
            "routing_key": message.routing_key,
            "size": message.size,
            "shown": message.shown[:200],
        }
        for message in result.page
    ]
    st.caption(
        f"Matches {result.offset + 1:,} to {result.offset + len(result.page):,} of "
        f"{result.matching:,}. Tick rows to act on those alone (by message id)."
    )
    picked = fitted_table(
        rows, PAGE_COLUMNS, key=f"dead-letter-page-{result.queue}", on_select="rerun",
        selection_mode="multi-row",
    )  # fmt: skip
    _pager(result)
    with st.expander("The page's messages in full"):
        show_messages(result.page, result.queue)
    return [
        rows[index]["message_id"] for index in picked.selection.rows if rows[index]["message_id"]
    ]


def _pager(result: Browse) -> None:
    query = st.session_state[_key(result.queue)]
    before, after = st.columns(2)
    if result.offset and before.button("Previous page", key=f"dl-previous-{result.queue}"):
        st.session_state[_key(result.queue)] = query | {"offset": max(0, result.offset - PAGE_SIZE)}
        st.rerun()
    if result.offset + len(result.page) < result.matching and after.button(
        "Next page", key=f"dl-next-{result.queue}"
    ):
        st.session_state[_key(result.queue)] = query | {"offset": result.offset + PAGE_SIZE}
        st.rerun()


def show_selection_actions(
    session: Session, row: TenantRow, selection: Selection, how_many: int, result: Browse
) -> None:
    access = shared_access(session)
    dlq = result.queue
    job = current_job("requeue", dlq)
    if job is not None and not job.done:
        return
    data = _export_data(session, result, selection)
    st.download_button(
        f"Export {count(how_many, 'message')} (JSON lines)",
        data=data or "",
        file_name=f"{dlq}.jsonl",
        mime="application/jsonl",
        disabled=data is None,
        key=f"export-{dlq}",
        icon=":material/download:",
        on_click="ignore",
    )
    if not access.may_act:
        st.caption(f"Read-only: {literal(access.refusal or '')}.")
        return
    shown = count(how_many, "selected message")
    # The same dialog name as the tenant's whole requeue: one requeue dialog open at a time.
    if dialog_button(f"Requeue {shown}", "requeue", dlq, ":material/replay:"):
        requeue_selection_dialog(session, row, selection)
    if access.may("discard") and dialog_button(
        f"Discard {shown}", "discard", dlq, ":material/delete:"
    ):
        discard_dialog(session, dlq, selection)


def _export_data(session: Session, result: Browse, selection: Selection) -> str | None:
    """Written when asked (one more pass): st.download_button needs its data up front."""
    key = f"export-data-{result.queue}"
    kept = st.session_state.get(key)
    if kept is not None and kept[0] == selection:
        return kept[1]
    if not st.button("Prepare the export", key=f"export-prepare-{result.queue}"):
        return None
    plan = or_error(lambda: plan_peek(session, result.queue))
    out = io.StringIO()
    query = st.session_state[_key(result.queue)]
    written = plan and or_error(
        lambda: export(session, plan, selection, out, console_actor(session), query["confirmed"])
    )
    if written is None:
        return None
    st.session_state[key] = (selection, out.getvalue())
    return out.getvalue()


def requeued(moved: Moved) -> tuple[bool, str]:
    result = moved.result
    held = (
        f" {count(result.held_back, 'message')} redriven too often held back."
        if result.held_back
        else ""
    )
    return moved.clean, (
        f"Requeued {count(result.moved, 'dead letter')}; {result.kept:,} not selected stayed; "
        f"{result.failed + result.skipped:,} stayed in the dead-letter queue.{held}"
        + literal(moved.doubled_words("the dead-letter queue"))
        + stopped_words(result)
    )


@st.dialog("Requeue the selection", on_dismiss=closer("requeue"))
def requeue_selection_dialog(session: Session, row: TenantRow, selection: Selection) -> None:
    dlq = row.dead_letter_queue or ""
    with_priority = st.checkbox("With a new priority", key=f"rs-priority-on-{dlq}")
    priority = (
        st.number_input("Priority", 0, 255, 9, key=f"rs-priority-{dlq}") if with_priority else None
    )
    rate = rate_input(f"rs-rate-{dlq}")
    include = st.checkbox(
        f"Include messages redriven {session.settings.max_redrives} times or more",
        key=f"rs-include-{dlq}",
    )
    new_priority = None if priority is None else int(priority)
    plan = or_error(
        lambda: plan_requeue(session, dlq, None, None, selection, new_priority, rate, include)
    )
    if plan is not None:
        confirm_move(session, dlq, plan)


@st.dialog("Discard the selection", on_dismiss=closer("discard"))
def discard_dialog(session: Session, dlq: str, selection: Selection) -> None:
    plan = or_error(lambda: plan_discard(session, dlq, selection))
    if plan is None:
        return
    st.markdown(literal(plan.sentence))
    if typed_and_pressed(dlq, "Discard", "discard"):
        done = or_error(lambda: discard(session, plan, console_actor(session)))
        if done is None:
            return
        st.session_state[f"discarded-{dlq}"] = (
            f"Discarded {count(done.discarded, 'message')} (their ids are in the audit log); "
            f"{done.ready_after:,} ready in {dlq} now."
        )
        close_dialog("discard")
        _after(session, dlq)
        st.rerun()


def show_replay(session: Session, row: TenantRow) -> None:
    """An export (JSON lines, as Export writes them) published back after a fix, at least
    once: into the tenant's queue, or through the tenant exchange by each one's routing key."""
    access = shared_access(session)
    if not access.may_act:
        st.caption(f"Read-only: {literal(access.refusal or '')}.")
        return
    accept_uploads()
    uploaded = st.file_uploader(
        "JSON lines (up to 1 MB here; larger files: `warren publish --file`)",
        type=["jsonl", "json", "txt"], key=f"replay-file-{row.queue}",
    )  # fmt: skip
    if uploaded is None:
        return
    into = st.radio(
        "Into", [f"queue {row.queue}", "the tenant exchange, by each message's routing key"],
        key=f"replay-into-{row.queue}", format_func=literal,
    )  # fmt: skip
    rate = rate_input(f"replay-rate-{row.queue}")
    to_queue = row.queue if into.startswith("queue ") else None
    text = uploaded.getvalue().decode("utf-8", errors="replace")
    plan = or_error(lambda: plan_publish(session, uploaded.name, text, to_queue, None, rate=rate))
    if plan is None:
        return
    st.markdown(literal(plan.sentence))
    force = plan.loses > 0 and st.checkbox(
        f"Lose {count(plan.loses, 'message')} anyway", key=f"replay-force-{row.queue}"
    )
    if st.button(
        "Publish", type="primary", disabled=plan.loses > 0 and not force,
        key=f"replay-go-{row.queue}",
    ):  # fmt: skip
        published = or_error(lambda: publish(session, plan, console_actor(session), force))
        if published is None:
            return
        st.session_state[f"replayed-{row.queue}"] = (published.stopped is None, replayed(published))
        after_action(session, row.queue)
        st.rerun()


def replayed(published: Published) -> str:
    held = "".join(
        f" {literal(queue)} holds {ready:,} ready now."
        for queue, ready in published.ready_after.items()
    )
    stopped = (
        f" Stopped: {literal(published.stopped)}; the {published.resume_skip:,} before it are "
        "published."
        if published.stopped
        else ""
    )
    return f"Published {count(published.published, 'message')}.{held}{stopped}"
