"""One tenant (`/tenant?tenant=ID`): its queue's settings, counts over time, consumers,
dead letters, and a look at its messages."""

import sqlite3
import time

import pandas as pd
import streamlit as st

from dashboard.errors import WarrenError
from dashboard.history import Point, with_gaps
from dashboard.messages import MAX_COUNT, PEEK_NOTICE, QUORUM_NOTICE, PeekResult, peek
from dashboard.models import TenantRow
from pages.components.blocks import CONSUMER_COLUMNS, table_of
from pages.components.charts import counts_figure
from pages.components.entry import behind_the_entry_script
from pages.components.formatting import literal
from pages.components.freshness import show_freshness
from pages.components.navigation import FLAG_ICONS
from pages.components.state import (
    current_settings,
    queue_detail,
    shared_client,
    shared_consumers_poll,
    shared_history,
    shared_overview_poll,
    shared_prometheus,
)
from pages.components.tenant_actions import show_actions

WINDOWS = {"10 min": 600, "1 h": 3600, "6 h": 6 * 3600, "24 h": 24 * 3600}
CONSUMER_FIELDS = ("connection", "prefetch", "unacked", "load", "ack_rate", "idle_since", "flags")
TENANT_CONSUMER_COLUMNS = {field: CONSUMER_COLUMNS[field] for field in CONSUMER_FIELDS}

behind_the_entry_script()
settings = current_settings()
heading = st.empty()
overview_poll = shared_overview_poll(settings)
snapshot = overview_poll.get()
tenants = sorted({row.tenant for row in snapshot.data.rows}) if snapshot.data else []
asked = st.query_params.get("tenant")
tenant = st.selectbox(
    "Tenant",
    tenants,
    index=tenants.index(asked) if asked in tenants else None,
    placeholder="pick a tenant",
)
if tenant:
    st.query_params["tenant"] = tenant


def show_flags(row: TenantRow) -> None:
    for flag in row.flags:
        st.warning(literal(flag.reason), icon=FLAG_ICONS.get(flag.kind, ":material/flag:"))


def show_headline(row: TenantRow) -> None:
    ready, unacked, consumers, dead = st.columns(4)
    ready.metric("Ready", f"{row.ready:,}")
    unacked.metric("Unacked", f"{row.unacked:,}")
    consumers.metric("Consumers", f"{row.consumers:,}")
    dead.metric(
        "Dead letters", "none set up" if row.dead_letters is None else f"{row.dead_letters:,}"
    )


def show_settings(row: TenantRow) -> bool:
    """The queue's arguments; False when the broker could not be asked."""
    try:
        detail = queue_detail(settings.fingerprint(), settings, row.queue)
    except WarrenError as exc:
        st.error(literal(str(exc)))
        return False
    table = pd.DataFrame(detail.settings, columns=["Setting", "Value"])
    st.dataframe(table, hide_index=True, width="stretch")
    if row.dead_letter_queue:
        st.caption(
            f"Dead letters go to queue {literal(row.dead_letter_queue)} "
            f"({row.dead_letters or 0:,} messages)."
        )
    elif "x-dead-letter-exchange" not in detail.info.effective_arguments:
        st.caption("No dead-letter exchange: rejected and expired messages are dropped.")
    return True


def chart_points(row: TenantRow, seconds: int) -> tuple[list[Point], str] | None:
    """The points for the window and where they come from; None (said on the page) if none can."""
    if seconds <= 600:
        detail = queue_detail(settings.fingerprint(), settings, row.queue)
        points = [Point(s.at.timestamp(), s.ready, s.unacked) for s in detail.samples]
        return points, "the broker's own samples"
    since = time.time() - seconds
    if settings.prometheus_url:
        step = max(15.0, seconds / 500)
        samples = shared_prometheus(settings).series(row.vhost, row.queue, since, step)
        return with_gaps(samples, max_gap=3 * step), f"Prometheus, one point every {step:g} s"
    history = shared_history(settings)
    if history is None:
        st.info("No local history: the history file cannot be opened (see WARREN_HISTORY_DB).")
        return None
    try:
        samples = history.series(row.vhost, row.queue, since)
    except sqlite3.Error as exc:
        st.error(literal(f"The local history at {history.path} cannot be read: {exc}."))
        return None
    return (
        with_gaps(samples, max_gap=3 * settings.refresh_seconds),
        f"Warren's history, one sample per poll ({settings.refresh_seconds:g} s)",
    )


def show_chart(row: TenantRow) -> None:
    window = st.segmented_control(
        "Window", list(WINDOWS), default="10 min", key=f"window-{row.queue}"
    )
    try:
        found = chart_points(row, WINDOWS[window or "10 min"])
    except WarrenError as exc:
        st.error(literal(str(exc)))
        return
    if found is None:
        return
    points, source = found
    if not points:
        st.info("No samples for this window yet: they appear as Warren polls the broker.")
        return
    st.plotly_chart(counts_figure(points, f"{row.queue}: last {window}"), width="stretch")
    st.caption(f"From {source}. Breaks in the lines are gaps in the data.")


def show_consumers(row: TenantRow) -> None:
    consumers = shared_consumers_poll(settings).get()
    loads = (
        [load for load in consumers.data.loads if load.queue == row.queue] if consumers.data else []
    )
    if not loads:
        st.info("No consumer on this queue. Its messages wait until a worker pod consumes it.")
        return
    rows = [load.model_dump() | {"flags": ", ".join(f.kind for f in load.flags)} for load in loads]
    st.dataframe(
        table_of(rows, TENANT_CONSUMER_COLUMNS),
        column_config=TENANT_CONSUMER_COLUMNS,
        hide_index=True,
        width="stretch",
    )


def show_peek(row: TenantRow) -> None:
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
    try:
        result = peek(shared_client(settings), row.vhost, queue, int(count), confirmed)
    except WarrenError as exc:
        st.error(literal(str(exc)))
        return
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


@st.fragment(run_every=settings.refresh_seconds)
def live_counts(tenant: str, queue: str) -> None:
    latest = overview_poll.get().data
    row = next((r for r in latest.rows if (r.tenant, r.queue) == (tenant, queue)), None)
    if row is None:
        st.warning("This binding is gone from the broker since the page was opened.")
        return
    show_headline(row)
    show_flags(row)


def show_queue(row: TenantRow) -> None:
    st.header(literal(row.queue), divider="gray")
    if row.shares_queue_with:
        st.caption(f"Shared with tenant ids: {literal(', '.join(row.shares_queue_with))}.")
    live_counts(row.tenant, row.queue)
    settings_tab, chart_tab, consumers_tab, peek_tab, actions_tab = st.tabs(
        ["Settings", "Over time", "Consumers", "Messages", "Actions"]
    )
    with settings_tab:
        if not show_settings(row):
            return
    with chart_tab:
        show_chart(row)
    with consumers_tab:
        show_consumers(row)
    with peek_tab:
        show_peek(row)
    with actions_tab:
        show_actions(settings, row)


heading.title(f"Tenant {literal(tenant)}" if tenant else "Tenant")
show_freshness(snapshot)
if snapshot.data is not None and tenant:
    rows = [row for row in snapshot.data.rows if row.tenant == tenant]
    for row in rows:
        show_queue(row)
elif snapshot.data is not None and asked:
    st.warning(
        f"No queue is bound to exchange {literal(settings.tenant_exchange)} with routing key "
        f"{literal(asked)}. Pick a tenant above, or check the id."
    )
elif snapshot.data is not None:
    st.info("Pick a tenant to see its queue, its consumers and its messages.")
