"""Blocks several pages show: headline figures and tables."""

import pandas as pd
import streamlit as st

NUMERIC = frozenset({"number", "progress"})


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
