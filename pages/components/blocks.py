"""Blocks several pages show: headline figures, and the columns of a consumer table."""

import streamlit as st

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
    "idle_since": st.column_config.DatetimeColumn("Idle since (UTC)", format="HH:mm:ss"),
    "flags": st.column_config.TextColumn("Flags"),
    "channel": st.column_config.TextColumn("Channel"),
    "consumer_tag": st.column_config.TextColumn("Consumer tag"),
}


def headline(figures: dict[str, int]) -> None:
    """Counts side by side, with thousands separators."""
    for column, (label, value) in zip(st.columns(len(figures)), figures.items(), strict=True):
        column.metric(label, f"{value:,}")
