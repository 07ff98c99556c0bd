"""Links between pages: every tenant mention leads to its tenant page (`/tenant?tenant=ID`)."""

import streamlit as st

from dashboard.models import Flag
from pages.components.formatting import literal

TENANT_PAGE = "pages/tenant.py"
FLAG_ICONS = {
    "no-consumer": ":material/person_off:",
    "no-acks": ":material/hourglass_disabled:",
    "dead-letters-growing": ":material/trending_up:",
    "stuck": ":material/block:",
    "unlimited-prefetch": ":material/all_inclusive:",
    "auto-ack": ":material/warning:",
    "idle": ":material/bedtime:",
}


def filter_box(label: str, placeholder: str) -> str:
    """A text filter kept in the URL as `?q=`, so that a link reproduces the view."""
    query = st.text_input(label, value=st.query_params.get("q", ""), placeholder=placeholder)
    if query:
        st.query_params["q"] = query
    else:
        st.query_params.pop("q", None)
    return query


def open_tenant(tenant: str) -> None:
    st.switch_page(TENANT_PAGE, query_params={"tenant": tenant})


def attention_list(items: list[tuple[str, str, Flag]]) -> None:
    """One line per (tenant, subject, flag), each a link to the tenant's page."""
    for tenant, subject, flag in items:
        st.page_link(
            TENANT_PAGE,
            label=f"{literal(subject)}: {literal(flag.reason)}",
            icon=FLAG_ICONS.get(flag.kind, ":material/flag:"),
            query_params={"tenant": tenant},
        )


def flag_kinds(flags: list[Flag]) -> str:
    return ", ".join(flag.kind for flag in flags)
