"""The sidebar every page shares: which broker, vhost and user this console is looking at."""

import streamlit as st

from dashboard.settings import Settings
from pages.components.formatting import literal


def render_sidebar(settings: Settings) -> None:
    with st.sidebar:
        st.markdown(
            f"**Broker** {literal(settings.management_url)}  \n"
            f"**vhost** {literal(settings.vhost)}  \n"
            f"**Tenant exchange** {literal(settings.tenant_exchange)}  \n"
            f"**User** {literal(settings.username)}  \n"
            f"**Refresh** every {settings.refresh_seconds:g} s"
        )
