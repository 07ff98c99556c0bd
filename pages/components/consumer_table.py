"""The consumer table the Consumers page and the tenant page share."""

import streamlit as st

from dashboard.reads.consumers import own_only_sentence
from dashboard.reads.models import ConsumerLoad, ConsumerReport
from pages.components.blocks import fitted_table
from pages.components.formatting import literal
from pages.components.navigation import flag_kinds

CONSUMER_COLUMNS = {
    "connection": st.column_config.TextColumn("Pod (connection)"),
    "queue": st.column_config.TextColumn("Queue"),
    "tenants": st.column_config.ListColumn("Tenants"),
    "prefetch": st.column_config.NumberColumn("Prefetch", format="localized"),
    "unacked": st.column_config.NumberColumn("Unacked", format="localized"),
    "load": st.column_config.ProgressColumn(
        "Load", min_value=0, max_value=1, format="percent", help="Unacked against prefetch."
    ),
    "ack_rate": st.column_config.NumberColumn("Ack/s", format="%.1f"),
    "no_ack_for": st.column_config.TextColumn(
        "No ack for",
        help='Since its channel\'s ack count last moved, with messages held; "over" where '
        "the evidence ends (the broker keeps 10 minutes of samples). Empty: it acks.",
    ),
    "flags": st.column_config.TextColumn("Flags"),
    "channel": st.column_config.TextColumn("Channel"),
    "consumer_tag": st.column_config.TextColumn("Consumer tag"),
}


def show_consumer_table(loads: list[ConsumerLoad], fields: tuple[str, ...] | None = None) -> None:
    """One row per consumer, with the columns `fields` (all when None)."""
    columns = {field: CONSUMER_COLUMNS[field] for field in fields or CONSUMER_COLUMNS}
    rows = [load.model_dump() | {"flags": flag_kinds(load.flags)} for load in loads]
    fitted_table(rows, columns)


def shown_in_part(report: ConsumerReport, username: str) -> bool:
    """Says so when the broker shows this user only its own connections' consumers (it has no
    monitoring tag): then an empty table does not mean that no pod consumes."""
    if report.own_only:
        st.warning(literal(own_only_sentence(username)), icon=":material/visibility_off:")
    return report.own_only
