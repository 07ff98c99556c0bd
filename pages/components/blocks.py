"""Blocks several pages show: headline figures, tables, and the columns of a consumer table."""

import pandas as pd
import streamlit as st

NUMERIC = frozenset({"number", "progress"})

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


def table_of(rows: list[dict], columns: dict) -> pd.DataFrame:
    """The rows with `columns` (name -> column config), in that order. A number column stays
    numeric even when no row has a value (a rate before the broker's first sample): its cells
    are then empty, not "None"."""
    table = pd.DataFrame(rows, columns=list(columns))
    for name, config in columns.items():
        if config["type_config"]["type"] in NUMERIC:
            table[name] = pd.to_numeric(table[name])
    return table


def headline(figures: dict[str, int]) -> None:
    """Counts side by side, with thousands separators."""
    for column, (label, value) in zip(st.columns(len(figures)), figures.items(), strict=True):
        column.metric(label, f"{value:,}")
