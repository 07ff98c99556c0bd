"""The tenant page's look at messages: the first ready ones of its queue or its dead-letter
queue, returned to the queue as they were."""

import pandas as pd
import streamlit as st

from dashboard.broker.session import Session
from dashboard.reads.models import TenantRow
from dashboard.reads.peek import MAX_COUNT, PEEK_NOTICE, QUORUM_NOTICE, PeekResult, peek
from pages.components.errors import or_error
from pages.components.formatting import literal


def show_peek(session: Session, row: TenantRow) -> None:
    queues = [row.queue] + ([row.dead_letter_queue] if row.dead_letter_queue else [])
    st.caption(PEEK_NOTICE)
    with st.form(f"peek-{row.queue}"):
        # Radio labels render markdown: a queue name must stay text.
        queue = st.radio("Queue", queues, horizontal=True, format_func=literal)
        count = st.number_input("Messages", min_value=1, max_value=MAX_COUNT, value=5)
        # Always offered: the dead-letter queue may be a quorum queue when this one is not.
        confirmed = st.checkbox("I accept the cost on quorum queues", help=QUORUM_NOTICE)
        if not st.form_submit_button("Peek", icon=":material/visibility:"):
            return
    result = or_error(lambda: peek(session, queue, int(count), confirmed))
    if result is not None:
        show_messages(result)


def show_messages(result: PeekResult) -> None:
    if not result.messages:
        st.info(f"Queue {literal(result.queue)} has no ready message.")
    for message in result.messages:
        title = (
            f"#{message.position} · {message.size:,} bytes · {message.kind}"
            f"{' · redelivered' if message.redelivered else ''}"
            f"{f' · x-delivery-count {message.delivery_count}' if message.delivery_count else ''}"
            f"{f' · died {sum(d.count for d in message.deaths)}x' if message.deaths else ''}"
        )
        with st.expander(title, expanded=message.position == 1):
            st.text(
                f"exchange: {message.exchange or '(default)'}  routing key: {message.routing_key}"
            )
            if message.deaths:
                st.dataframe(
                    pd.DataFrame([death.model_dump() for death in message.deaths]),
                    hide_index=True,
                    width="stretch",
                )
            st.json({"properties": message.properties, "headers": message.headers}, expanded=False)
            st.code(message.shown, language="json" if message.kind == "json" else None)
            if message.truncated:
                st.caption(f"Cut for display: {message.size:,} bytes in all.")
