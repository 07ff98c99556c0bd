"""The sidebar every page shares: which broker, vhost and user this console is looking at, and
whether that user may change anything."""

import streamlit as st

from dashboard.settings import Settings
from pages.components.formatting import age_text, literal
from pages.components.state import log_out, shared_access, shared_overview_poll


def render_sidebar(settings: Settings) -> None:
    access = shared_access(settings)
    tags = ", ".join(access.tags) or "no tags"
    with st.sidebar:
        st.markdown(
            f"**Broker** {literal(settings.management_url)}  \n"
            f"**vhost** {literal(settings.vhost)}  \n"
            f"**Tenant exchange** {literal(settings.tenant_exchange)}  \n"
            f"**User** {literal(settings.username)} ({literal(tags)})  \n"
            f"**Refresh** every {settings.refresh_seconds:g} s"
        )
        if access.may_act:
            st.caption("May change things: every change asks first and is audited.")
        else:
            st.caption(f"Read-only: {literal(access.refusal or '')}.")
        st.fragment(run_every=settings.refresh_seconds)(show_data_age)(settings)
        if settings.auth == "login":
            st.button("Log out", on_click=log_out, icon=":material/logout:")


def show_data_age(settings: Settings) -> None:
    snapshot = shared_overview_poll(settings).get()
    if snapshot.fetched_at is None:
        st.caption("No data read yet.")
        return
    source = "metrics endpoint" if snapshot.data.counts_from == "metrics" else "management API"
    stale = " (the broker is not answering)" if snapshot.stale else ""
    st.caption(f"Data {age_text(snapshot.fetched_at)} old, counts from the {source}{stale}.")
