"""Tenant overview: which tenant is backed up, live, for every viewer from one shared poll."""

import streamlit as st

from dashboard.reads.models import Overview
from pages.components.blocks import headline, table_of
from pages.components.formatting import literal
from pages.components.freshness import show_freshness
from pages.components.navigation import attention_list, filter_box, flag_kinds, open_tenant
from pages.components.state import current_session, shared_overview_poll

COLUMNS = {
    "tenant": st.column_config.TextColumn("Tenant"),
    "queue": st.column_config.TextColumn("Queue"),
    "ready": st.column_config.NumberColumn("Ready", format="localized"),
    "unacked": st.column_config.NumberColumn("Unacked", format="localized"),
    "total": st.column_config.NumberColumn("Total", format="localized"),
    "consumers": st.column_config.NumberColumn("Consumers", format="localized"),
    "publish_rate": st.column_config.NumberColumn("Publish/s", format="%.1f"),
    "deliver_rate": st.column_config.NumberColumn("Deliver/s", format="%.1f"),
    "ack_rate": st.column_config.NumberColumn("Ack/s", format="%.1f"),
    "consumer_capacity": st.column_config.NumberColumn(
        "Capacity",
        format="percent",
        help="Share of time the queue could deliver to its consumers at once (100% is best).",
    ),
    "queue_type": st.column_config.TextColumn("Type"),
    "state": st.column_config.TextColumn("State"),
    "flags": st.column_config.TextColumn("Flags", help="Why this tenant needs a look."),
    "dead_letters": st.column_config.NumberColumn("Dead letters", format="localized"),
    "shares_queue_with": st.column_config.ListColumn(
        "Also bound as", help="Other tenant ids routed to the same queue: counts are shared."
    ),
}

ROWS = {"top 100": 100, "top 1,000": 1000, "all": None}
DEFAULT_ROWS = "top 1,000"

SHOWN_KEY = "tenant-table-shown"
session = current_session()
settings = session.settings
poll = shared_overview_poll(session)

st.title("Tenants")
query = filter_box("Filter by tenant or queue", "part of a tenant id or queue name")
shown = st.segmented_control("Rows", list(ROWS), default=DEFAULT_ROWS, key="rows-shown")


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


def show_table(overview: Overview, query: str, most: int | None) -> None:
    """The rows matching the filter, the `most` with most ready first (all when None): sorting
    by another column happens in the browser, filtering on the data already polled."""
    needle = query.casefold()
    matching = [
        row
        for row in overview.rows
        if needle in row.tenant.casefold() or needle in row.queue.casefold()
    ]
    rows = [row.model_dump() | {"flags": flag_kinds(row.flags)} for row in matching[:most]]
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
            "bindings, most ready first. Select a row to open its tenant."
        )
        # A selection refers to the rows as the viewer saw them, and a poll may have re-sorted
        # them since: keep the order shown last time to read it against.
        shown_before = st.session_state.get(SHOWN_KEY, [])
        st.session_state[SHOWN_KEY] = [row["tenant"] for row in rows]
        picked = st.dataframe(
            table_of(rows, COLUMNS),
            column_config=COLUMNS,
            hide_index=True,
            width="stretch",
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
    show_freshness(snapshot, f", counts from the {source}")
    show_headline(snapshot.data)
    show_attention(snapshot.data)
    show_table(snapshot.data, query, ROWS[shown or DEFAULT_ROWS])


live_overview()
