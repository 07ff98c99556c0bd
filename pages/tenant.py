"""One tenant (`/tenant?tenant=ID`): its queue's settings, counts over time, consumers,
dead letters, and a look at its messages."""

import pandas as pd
import streamlit as st

from dashboard.actions.audit import count
from dashboard.reads.consumers import pods_of
from dashboard.reads.durations import duration_text
from dashboard.reads.models import TenantRow
from dashboard.reads.queue_detail import QueueDetail
from dashboard.reads.timeouts import queue_timeout
from pages.components.charts import counts_figure
from pages.components.consumer_table import show_consumer_table, shown_in_part
from pages.components.dead_letter_view import show_dead_letters
from pages.components.errors import or_error
from pages.components.formatting import literal
from pages.components.freshness import show_freshness
from pages.components.navigation import FLAG_ICONS
from pages.components.peek_view import show_peek
from pages.components.pod_actions import show_pod_returns, show_returned
from pages.components.state import (
    current_session,
    queue_detail,
    shared_consumers_poll,
    shared_counts_over_time,
    shared_overview_poll,
)
from pages.components.tenant_actions import show_actions

WINDOWS = {"10 min": 600, "1 h": 3600, "6 h": 6 * 3600, "24 h": 24 * 3600}
CONSUMER_FIELDS = ("connection", "prefetch", "unacked", "load", "ack_rate", "no_ack_for", "flags")

session = current_session()
settings = session.settings
heading = st.empty()
overview_poll = shared_overview_poll(session)
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


def show_settings(row: TenantRow, detail: QueueDetail) -> None:
    """The queue's arguments, and where its dead letters go."""
    timeout = or_error(lambda: queue_timeout(session, detail.info))
    rows = detail.settings
    if timeout is not None:
        rows = [*rows, ("Consumer timeout", f"{duration_text(timeout.seconds)} ({timeout.source})")]
    table = pd.DataFrame(rows, columns=["Setting", "Value"])
    st.dataframe(table, hide_index=True, width="stretch")
    if row.dead_letter_queue:
        st.caption(
            f"Dead letters go to queue {literal(row.dead_letter_queue)} "
            f"({count(row.dead_letters or 0, 'message')})."
        )
    elif "x-dead-letter-exchange" not in detail.info.effective_arguments:
        st.caption("No dead-letter exchange: rejected and expired messages are dropped.")


@st.fragment(run_every=settings.refresh_seconds)
def live_chart(row: TenantRow) -> None:
    """The chart, drawn again on every poll like the counts above it (drawn once per page, its
    last point fell behind the headline while the page stayed open)."""
    detail = or_error(lambda: queue_detail(session, row.queue))
    if detail is not None:
        show_chart(row, detail)


def show_chart(row: TenantRow, detail: QueueDetail) -> None:
    window = st.segmented_control(
        "Window", list(WINDOWS), default="10 min", key=f"window-{row.queue}"
    )
    counts = shared_counts_over_time(session)
    series = or_error(
        lambda: counts.series(row.vhost, row.queue, WINDOWS[window or "10 min"], detail.samples)
    )
    if series is None:
        return
    if not series.points:
        st.info("No samples for this window yet: they appear as Warren polls the broker.")
        return
    st.plotly_chart(
        counts_figure(series.points, f"{row.queue}: last {window}"),
        width="stretch",
        key=f"chart-{row.queue}",
    )
    redelivered = (
        " Redelivered: the queue's redeliveries since the window's first sample that counts them "
        "(a rising line is work that keeps coming back)."
        if any(point.redelivered for point in series.points)
        else ""
    )
    st.caption(f"From {series.source}. Breaks in the lines are gaps in the data.{redelivered}")


@st.fragment(run_every=settings.refresh_seconds)
def live_consumers(queue: str) -> None:
    consumers = shared_consumers_poll(session).get()
    show_freshness(consumers)
    show_returned()
    if consumers.data is None:
        return
    in_part = shown_in_part(consumers.data, settings.username)
    every = consumers.data.loads
    loads = [load for load in every if load.queue == queue]
    if not loads:
        if not in_part:
            st.info("No consumer on this queue. Its messages wait until a worker pod consumes it.")
        return
    show_consumer_table(loads, CONSUMER_FIELDS)
    # Whole pods: a return closes a connection, with all it holds on any queue.
    here = {load.connection_id for load in loads}
    show_pod_returns(session, [pod for pod in pods_of(every) if pod.connection_id in here], queue)


@st.fragment(run_every=settings.refresh_seconds)
def live_counts(tenant: str, queue: str) -> None:
    latest = overview_poll.get()
    show_freshness(latest)
    rows = latest.data.rows if latest.data else []
    row = next((r for r in rows if (r.tenant, r.queue) == (tenant, queue)), None)
    if row is None:
        st.warning("This binding is gone from the broker since the page was opened.")
        return
    show_headline(row)
    show_flags(row)


def show_queue(row: TenantRow) -> None:
    """What an on-call engineer looks at first (state, trend, consumers), then the rest."""
    st.header(literal(row.queue), divider="gray")
    if row.shares_queue_with:
        st.caption(f"Shared with tenant ids: {literal(', '.join(row.shares_queue_with))}.")
    live_counts(row.tenant, row.queue)
    live_chart(row)
    st.subheader("Consumers")
    live_consumers(row.queue)
    # Keyed: the tab open stays open when an action in it runs the page again.
    actions_tab, peek_tab, dead_tab, settings_tab = st.tabs(
        ["Actions", "Messages", "Dead letters", "Settings"], key=f"tabs-{row.queue}"
    )
    with actions_tab:
        show_actions(session, row)
    with peek_tab:
        show_peek(session, row)
    with dead_tab:
        show_dead_letters(session, row)
    with settings_tab:
        detail = or_error(lambda: queue_detail(session, row.queue))
        if detail is not None:
            show_settings(row, detail)


heading.title(f"Tenant {literal(tenant)}" if tenant else "Tenant")
if not tenant:
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
