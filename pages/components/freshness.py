"""The data's age, and the banner shown when the broker stops answering."""

import streamlit as st

from dashboard.errors import BrokerUnreachable, TenantExchangeMissing
from dashboard.reads.poll import Snapshot
from pages.components.formatting import age_text, clock_text, literal


def show_freshness(snapshot: Snapshot, detail: str = "") -> None:
    """A banner when the last poll failed; else a caption with the data's age, and `detail`."""
    if isinstance(snapshot.error, TenantExchangeMissing):
        st.warning(literal(str(snapshot.error)), icon=":material/link_off:")
    elif snapshot.stale:
        since = snapshot.failing_since
        shown = (
            f"Showing the last good data, from {clock_text(snapshot.fetched_at)} "
            f"({age_text(snapshot.fetched_at)} old)."
            if snapshot.fetched_at
            else "No data has been read yet."
        )
        # Only silence is an outage; a refusal or a broken answer means the broker is up.
        what = (
            "has not answered"
            if isinstance(snapshot.error, BrokerUnreachable)
            else "has refused or failed every request"
        )
        st.error(
            f"**The broker {what} since {clock_text(since)}** ({age_text(since)} ago). "
            f"{literal(str(snapshot.error))} {shown} Warren keeps trying.",
            icon=":material/cloud_off:",
        )
    elif snapshot.fetched_at:
        st.caption(
            f"Data from {clock_text(snapshot.fetched_at)}, {age_text(snapshot.fetched_at)} old"
            f"{detail}."
        )
