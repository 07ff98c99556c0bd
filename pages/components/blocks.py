"""Blocks several pages show: headline figures and tables."""

import pandas as pd
import streamlit as st

from dashboard.visible import visible

NUMERIC = frozenset({"number", "progress"})
# Streamlit's rows and header are this tall; a table taller than MOST_PIXELS scrolls inside.
ROW_PIXELS = 35
MOST_PIXELS = 700


def table_of(rows: list[dict], columns: dict) -> pd.DataFrame:
    """The rows with `columns` (name -> column config), in that order. A number column stays
    numeric even when no row has a value (a rate before the broker's first sample): its cells
    are then empty, not "None". Text shows its invisible characters as their escapes."""
    table = pd.DataFrame(rows, columns=list(columns))
    for name, config in columns.items():
        if config["type_config"]["type"] in NUMERIC:
            table[name] = pd.to_numeric(table[name])
        else:
            table[name] = table[name].map(_shown)
    return table


def _shown(value):
    return visible(value) if isinstance(value, str) else value


def table_height(rows: int) -> int:
    """As tall as the header and `rows` rows (and the border), up to MOST_PIXELS."""
    return min(MOST_PIXELS, ROW_PIXELS * (rows + 1) + 3)


def fitted_table(rows: list[dict], columns: dict, **options):
    """The rows as a table as tall as they are (up to MOST_PIXELS), in the order and with the
    configs of `columns`, with empty cells where a value is not known (Streamlit would write
    "None"). `options` go to st.dataframe (a key, a selection mode)."""
    return st.dataframe(
        table_of(rows, columns),
        column_config=columns,
        hide_index=True,
        width="stretch",
        height=table_height(len(rows)),
        placeholder="",
        **options,
    )


def headline(figures: dict[str, int]) -> None:
    """Counts side by side, with thousands separators."""
    for column, (label, value) in zip(st.columns(len(figures)), figures.items(), strict=True):
        column.metric(label, f"{value:,}")
