"""The sidebar every page shares: which broker, vhost and user this console is looking at, and
whether that user may change anything."""

import streamlit as st

from dashboard.broker.session import Session
from pages.components.cluster import show_reading_from
from pages.components.formatting import literal
from pages.components.state import log_out, pick_vhost, shared_access, visible_vhosts


def render_sidebar(session: Session) -> None:
    settings = session.settings
    access = shared_access(session)
    tags = ", ".join(access.tags) or "no tags"
    with st.sidebar:
        vhosts = visible_vhosts(session)
        if len(vhosts) > 1:
            st.selectbox(
                "vhost",
                vhosts,
                index=vhosts.index(settings.vhost) if settings.vhost in vhosts else 0,
                key="vhost-picker",
                on_change=lambda: pick_vhost(st.session_state["vhost-picker"]),
                help="The vhosts this user may see. The choice is kept in the URL (`?vhost=`).",
            )
        st.markdown(
            f"**Broker** {literal(', '.join(settings.management_urls))}  \n"
            + ("" if len(vhosts) > 1 else f"**vhost** {literal(settings.vhost)}  \n")
            + f"**Tenant exchange** {literal(settings.tenant_exchange)}  \n"
            + _who(session, tags)
            + f"**Refresh** every {settings.refresh_seconds:g} s"
        )
        if access.may_act:
            st.caption("May change things: every change asks first and is audited.")
        else:
            st.caption(f"Read-only: {literal(access.refusal or '')}.")
        show_reading_from(session)
        if settings.auth == "login":
            st.button("Log out", on_click=log_out, icon=":material/logout:")
        if settings.auth == "oidc":
            st.button("Sign out", on_click=st.logout, icon=":material/logout:")


def _who(session: Session, tags: str) -> str:
    person = session.person
    if person is None:
        return f"**User** {literal(session.username)} ({literal(tags)})  \n"
    role = person.role.name if person.role is not None else "no role"
    return (
        f"**Signed in** {literal(person.shown)} ({literal(role)}), acting as "
        f"{literal(session.username)}  \n"
    )
