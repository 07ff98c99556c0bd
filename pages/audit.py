"""Audit: every admin action, refused and failed ones too; filter, and export as CSV."""

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from dashboard.actions.access import audit_view
from dashboard.actions.audit import readable, records_csv
from pages.components.errors import or_error
from pages.components.formatting import literal
from pages.components.state import current_session

COLUMNS = {
    "started": st.column_config.DatetimeColumn("Started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "actor": st.column_config.TextColumn("Actor"),
    "action": st.column_config.TextColumn("Action"),
    "target": st.column_config.TextColumn("Target"),
    "dry_run": st.column_config.CheckboxColumn("Dry run"),
    "outcome": st.column_config.TextColumn("Outcome", help="Empty: started and never ended."),
    "counts": st.column_config.TextColumn("Counts"),
    "parameters": st.column_config.TextColumn("Parameters"),
    "error": st.column_config.TextColumn("Error"),
}

session = current_session()
st.title("Audit")
view = or_error(lambda: audit_view(session, limit=5000))
if view is None:
    st.stop()
records = view.records
if view.vhosts is not None:
    named = ", ".join(view.vhosts) or "none"
    st.caption(
        f"The actions in the vhosts {literal(session.username)} may read ({literal(named)}); "
        "administrators see every vhost's."
    )
if not records:
    st.info(
        "No admin action has been recorded yet. Purges, requeues, republishes and tenant "
        "bindings, from the console or the CLI, appear here."
    )
    st.stop()

actions, outcomes, search = st.columns(3)
chosen_actions = actions.multiselect("Action", sorted({r.action for r in records}))
chosen_outcomes = outcomes.multiselect(
    "Outcome", sorted({r.outcome or "unfinished" for r in records})
)
needle = search.text_input("Target or actor contains").casefold()
shown = [
    record
    for record in records
    if (not chosen_actions or record.action in chosen_actions)
    and (not chosen_outcomes or (record.outcome or "unfinished") in chosen_outcomes)
    and (needle in record.target.casefold() or needle in record.actor.casefold())
]
st.caption(f"{len(shown):,} of {len(records):,} actions, newest first.")
table = pd.DataFrame(
    [
        record.model_dump()
        | {
            "started": datetime.fromtimestamp(record.started_at, UTC),
            "counts": readable(record.counts),
            "parameters": readable(record.parameters),
        }
        for record in shown
    ],
    columns=list(COLUMNS),
)
st.dataframe(table, column_config=COLUMNS, hide_index=True, width="stretch", placeholder="")
st.download_button(
    "Export as CSV",
    records_csv(shown),
    file_name="warren-audit.csv",
    mime="text/csv",
    icon=":material/download:",
)
