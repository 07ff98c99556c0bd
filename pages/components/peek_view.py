"""The tenant page's look at messages: the first ready ones of its queue or its dead-letter
queue, returned to the queue as they were (on a quorum queue, a change: see actions/peek.py)."""

import json

import streamlit as st

from dashboard.actions.audit import count
from dashboard.actions.peek import peek, peek_sentence
from dashboard.broker.session import Session
from dashboard.reads.models import TenantRow
from dashboard.reads.peek import (
    MAX_COUNT,
    PEEK_NOTICE,
    QUORUM_NOTICE,
    PeekedMessage,
    PeekPlan,
    PeekResult,
    may_need_confirmation,
    plan_peek,
)
from pages.components.actions import console_actor
from pages.components.blocks import fitted_table
from pages.components.errors import or_error
from pages.components.formatting import literal
from pages.components.state import shared_access

DEATH_COLUMNS = {
    "reason": st.column_config.TextColumn("Reason"),
    "count": st.column_config.NumberColumn("Count", format="localized"),
    "queue": st.column_config.TextColumn("Queue"),
    "exchange": st.column_config.TextColumn("Exchange"),
    "routing_keys": st.column_config.ListColumn("Routing keys"),
    "time": st.column_config.DatetimeColumn("Time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
}
FIELD_COLUMNS = {
    "name": st.column_config.TextColumn("Name"),
    "value": st.column_config.TextColumn("Value"),
}


def show_peek(session: Session, row: TenantRow) -> None:
    queues = [row.queue] + ([row.dead_letter_queue] if row.dead_letter_queue else [])
    st.caption(PEEK_NOTICE)
    # Asked before the form: a form's widgets cannot follow the radio until it is submitted.
    access = shared_access(session)
    hidden = access.payload_refusal()
    if hidden is not None:
        st.info(f"Payloads are hidden: {literal(hidden)}.")
        return
    costly = may_need_confirmation(session, row)
    offer_confirmation = costly and access.may_act
    if costly and not access.may_act:
        st.caption(
            f"A quorum queue here can be peeked only by a user who may act: "
            f"{literal(access.refusal or '')}."
        )
    with st.form(f"peek-{row.queue}"):
        # Radio labels render markdown: a queue name must stay text.
        queue = st.radio("Queue", queues, horizontal=True, format_func=literal)
        wanted = st.number_input("Messages", min_value=1, max_value=MAX_COUNT, value=5)
        confirmed = (
            st.checkbox(
                "I accept the cost on quorum queues", help=QUORUM_NOTICE.format(verb="peek")
            )
            if offer_confirmation
            else False
        )
        if not st.form_submit_button("Peek", icon=":material/visibility:"):
            return
    plan = or_error(lambda: plan_peek(session, queue))
    if plan is None:
        return
    actor = console_actor(session)
    result = or_error(lambda: peek(session, plan, int(wanted), actor, confirmed))
    if result is not None:
        show_cost(plan, result)
        show_messages(result.messages, result.queue)


def show_cost(plan: PeekPlan, result: PeekResult) -> None:
    cost = peek_sentence(plan, result)
    if cost is None:
        return
    if result.past_limit:
        st.warning(literal(cost), icon=":material/warning:")
    else:
        st.caption(literal(cost))


def show_messages(messages: list[PeekedMessage], queue: str) -> None:
    if not messages:
        st.info(f"Queue {literal(queue)} has no ready message.")
    for message in messages:
        title = (
            f"#{message.position} · {count(message.size, 'byte')} · {message.kind}"
            f"{' · redelivered' if message.redelivered else ''}"
            f"{f' · x-delivery-count {message.delivery_count}' if message.delivery_count else ''}"
            f"{f' · died {sum(d.count for d in message.deaths)}x' if message.deaths else ''}"
        )
        with st.expander(title, expanded=message.position == 1):
            st.text(
                f"exchange: {message.exchange or '(default)'}  routing key: {message.routing_key}"
            )
            if message.deaths:
                st.caption("Dead-lettered (x-death):")
                deaths = [death.model_dump() for death in message.deaths]
                fitted_table(deaths, DEATH_COLUMNS)
            show_fields("Properties", message.properties)
            show_fields("Headers", message.headers)
            st.code(message.shown, language="json" if message.kind == "json" else None)
            if message.truncated:
                st.caption(f"Cut for display: {count(message.size, 'byte')} in all.")


def show_fields(label: str, fields: dict) -> None:
    """A message's properties or headers as a name/value table; nested values as JSON."""
    if not fields:
        st.caption(f"{label}: none.")
        return
    st.caption(f"{label}:")
    rows = [
        {"name": name, "value": value if isinstance(value, str) else json.dumps(value)}
        for name, value in fields.items()
    ]
    fitted_table(rows, FIELD_COLUMNS)
