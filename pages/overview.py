"""Tenant overview: which tenant is backed up, live, for every viewer from one shared poll, and
each tenant's last hour from Warren's history: a line in its row, the fastest growing named."""

import time
from datetime import datetime

import streamlit as st

from dashboard.reads.durations import duration_text
from dashboard.reads.history import History
from dashboard.reads.models import Overview, TenantRow
from dashboard.reads.trends import SPANS, WINDOW_SECONDS, Trends, fetch_trends
from dashboard.reads.unrouted import unrouted_sentence
from dashboard.reads.waiting import longest_waiting_first
from pages.components.blocks import fitted_table, headline
from pages.components.errors import or_error
from pages.components.formatting import clock_text, literal
from pages.components.freshness import show_freshness
from pages.components.navigation import (
    ONBOARDING_PAGE,
    TENANT_PAGE,
    attention_list,
    filter_box,
    flag_kinds,
    in_this_vhost,
    open_tenant,
)
from pages.components.state import current_session, shared_history, shared_overview_poll

SPAN_MINUTES = WINDOW_SECONDS / SPANS / 60
# What matters at 3 a.m. first, visible without scrolling sideways; the rest after it.
COLUMNS = {
    "tenant": st.column_config.TextColumn("Tenant"),
    "flags": None,  # sized to its longest list: flags_column
    "ready": st.column_config.NumberColumn("Ready", format="localized"),
    "unacked": st.column_config.NumberColumn("Unacked", format="localized"),
    "consumers": st.column_config.NumberColumn("Consumers", format="localized"),
    "dead_letters": st.column_config.NumberColumn("Dead letters", format="localized"),
    "waiting": st.column_config.NumberColumn(
        "Waiting (min)",
        format="%.1f",
        help="How long the tenant's ready work has waited: the oldest ready message's age where "
        "producers set the AMQP timestamp, else how long the queue has had ready messages "
        "(from Warren's history; at least that long where the history reaches no further).",
    ),
    "drain": st.column_config.TextColumn(
        "Drain", help="The ready messages at the current ack rate."
    ),
    "trend": st.column_config.LineChartColumn(
        "Ready, last hour",
        y_min=0,
        help=f"Ready at the last poll of each {SPAN_MINUTES:g} minutes, from Warren's history: "
        "minutes when nobody had the console open are left out.",
    ),
    "growth": st.column_config.NumberColumn(
        "Growth (1 h)",
        format="localized",
        help="Ready now minus ready at the first poll of the last hour in Warren's history.",
    ),
    "total": st.column_config.NumberColumn("Total", format="localized"),
    "publish_rate": st.column_config.NumberColumn("Publish/s", format="%.1f"),
    "deliver_rate": st.column_config.NumberColumn("Deliver/s", format="%.1f"),
    "ack_rate": st.column_config.NumberColumn("Ack/s", format="%.1f"),
    "consumer_capacity": st.column_config.NumberColumn(
        "Capacity",
        format="%d%%",
        help="Share of time the queue could deliver to its consumers at once (100% is best).",
    ),
    "queue_type": st.column_config.TextColumn("Type"),
    "state": st.column_config.TextColumn("State"),
    "queue": st.column_config.TextColumn("Queue"),
    "shares_queue_with": st.column_config.ListColumn(
        "Also bound as", help="Other tenant ids routed to the same queue: counts are shared."
    ),
}
# Pixels per character of a flag list, and the cell's padding: the Flags column fits its
# longest list, so that no flag is cut to "no-consume...".
FLAG_CHAR_PIXELS = 7.5
FLAG_PADDING_PIXELS = 24

# "all" stops here: at 50,000 rows one viewer's table, rebuilt every refresh, took the console
# down for everyone (a probe of issue 20); the filter reaches the others.
MOST_ROWS = 10_000
ROWS = {"top 100": 100, "top 1,000": 1000, "all": MOST_ROWS}
DEFAULT_ROWS = "top 1,000"
ORDERS = {"most ready": None, "longest wait": longest_waiting_first}
DEFAULT_ORDER = "most ready"

SHOWN_KEY = "tenant-table-shown"
session = current_session()
settings = session.settings
poll = shared_overview_poll(session)

st.title("Tenants")
query = filter_box("Filter by tenant or queue", "part of a tenant id or queue name")
rows_column, order_column = st.columns(2)
shown = rows_column.segmented_control("Rows", list(ROWS), default=DEFAULT_ROWS, key="rows-shown")
order = order_column.segmented_control(
    "Order", list(ORDERS), default=DEFAULT_ORDER, key="rows-order"
)


def show_headline(overview: Overview) -> None:
    totals = overview.totals
    headline(
        {
            "Tenants": totals.tenants,
            "Ready": totals.ready,
            "Unacked": totals.unacked,
            "Consumers": totals.consumers,
        }
    )


def show_attention(overview: Overview) -> None:
    flagged = [(row.tenant, row.tenant, flag) for row in overview.rows for flag in row.flags]
    if flagged:
        st.subheader(f"Needs attention ({len({tenant for tenant, _, _ in flagged}):,})")
        attention_list(flagged)
    unrouted = overview.unrouted
    if unrouted and (unrouted.dropped or unrouted.captured):
        st.warning(literal(unrouted_sentence(unrouted)), icon=":material/call_split:")
        st.page_link(
            ONBOARDING_PAGE,
            label="Who published before onboarding",
            icon=":material/link:",
            query_params=in_this_vhost({}),
        )


@st.cache_data(show_spinner=False, max_entries=16)
def last_hour(fingerprint: str, polled_at: datetime, vhost: str, _history: History) -> Trends:
    """Every tenant queue's last hour, read once per poll (`polled_at`) however many look."""
    return fetch_trends(_history, vhost, time.time())


def read_trends(overview: Overview, polled_at: datetime) -> Trends | None:
    history = shared_history(session)
    if history is None:
        st.caption("No trends: the history file cannot be opened (see WARREN_HISTORY_DB).")
        return None
    return or_error(lambda: last_hour(settings.fingerprint(), polled_at, overview.vhost, history))


def show_growing(overview: Overview, trends: Trends) -> None:
    """The backlogs that grew most in the last hour, each a link to its tenant."""
    rows: dict[str, TenantRow] = {}
    for row in overview.rows:
        rows.setdefault(row.queue, row)
    growing = [rows[queue] for queue in trends.growing_fastest if queue in rows]
    if not growing:
        return
    st.subheader("Growing fastest")
    for row in growing:
        trend = trends.by_queue[row.queue]
        st.page_link(
            TENANT_PAGE,
            label=f"{literal(row.tenant)}: ready grew by {trend.growth:,} in "
            f"{duration_text(trend.growth_seconds)} (now {row.ready:,}).",
            icon=":material/trending_up:",
            query_params=in_this_vhost({"tenant": row.tenant}),
        )


def table_row(row: TenantRow, trends: Trends | None) -> dict:
    trend = trends.by_queue.get(row.queue) if trends else None
    capacity = row.consumer_capacity
    return row.record() | {
        "flags": flag_kinds(row.flags),
        "trend": (trend.known or None) if trend else None,
        "growth": trend.growth if trend else None,
        "waiting": row.wait.seconds / 60 if row.wait else None,
        "drain": row.wait.drain if row.wait else None,
        # A whole percent: 93%, not 92.85% beside 100%.
        "consumer_capacity": None if capacity is None else round(capacity * 100),
    }


def flags_column(rows: list[dict]) -> dict:
    longest = max((len(row["flags"]) for row in rows), default=0)
    return st.column_config.TextColumn(
        "Flags",
        help="Why this tenant needs a look.",
        width=max(80, round(longest * FLAG_CHAR_PIXELS) + FLAG_PADDING_PIXELS),
    )


def show_table(
    overview: Overview, trends: Trends | None, query: str, most: int, order: str
) -> None:
    """The rows matching the filter, the first `most` in `order`: sorting by another column
    happens in the browser, filtering on the data already polled."""
    needle = query.casefold()
    matching = [
        row
        for row in overview.rows
        if needle in row.tenant.casefold() or needle in row.queue.casefold()
    ]
    if ORDERS[order]:
        matching = ORDERS[order](matching)
    rows = [table_row(row, trends) for row in matching[:most]]
    if not overview.rows:
        st.info(
            f"No queue is bound to exchange {literal(overview.exchange)} in vhost "
            f"{literal(overview.vhost)} yet. A tenant appears here once its queue is bound to "
            "that exchange with routing key = tenant id."
        )
    elif not rows:
        st.info("No tenant or queue matches the filter. Clear it to see all tenants.")
    else:
        st.caption(
            f"{len(rows):,} of {len(matching):,} matching of {len(overview.rows):,} tenant "
            f"bindings, {order} first. Select a row to open its tenant; the table's toolbar "
            "shows and hides columns."
            + (
                f" A table shows at most {MOST_ROWS:,} rows: the filter narrows to the others."
                if len(matching) > MOST_ROWS
                else ""
            )
        )
        # A selection refers to the rows as the viewer saw them, and a poll may have re-sorted
        # them since: keep the order shown last time to read it against.
        shown_before = st.session_state.get(SHOWN_KEY, [])
        st.session_state[SHOWN_KEY] = [row["tenant"] for row in rows]
        picked = fitted_table(
            rows,
            COLUMNS | {"flags": flags_column(rows)},
            on_select="rerun",
            selection_mode="single-row",
            key="tenant-table",
        )
        selected = picked.selection.rows
        if selected and selected[0] < len(shown_before):
            open_tenant(shown_before[selected[0]])


@st.fragment(run_every=settings.refresh_seconds)
def live_overview() -> None:
    snapshot = poll.get()
    if snapshot.data is None:
        show_freshness(snapshot)
        return
    source = "metrics endpoint" if snapshot.data.counts_from == "metrics" else "management API"
    listed = snapshot.data.statistics_at
    rates = f"rates from {clock_text(listed)}" if listed else "rates with the next listing"
    show_freshness(snapshot, f", counts from the {source}, {rates}")
    trends = read_trends(snapshot.data, snapshot.fetched_at)
    show_headline(snapshot.data)
    show_attention(snapshot.data)
    if trends is not None:
        show_growing(snapshot.data, trends)
    show_table(snapshot.data, trends, query, ROWS[shown or DEFAULT_ROWS], order or DEFAULT_ORDER)


live_overview()
