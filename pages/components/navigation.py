"""Links between pages: every tenant mention leads to its tenant page (`/tenant?tenant=ID`)."""

import streamlit as st

from dashboard.reads.models import Flag
from pages.components.formatting import literal

TENANT_PAGE = "pages/tenant.py"
ONBOARDING_PAGE = "pages/onboarding.py"
# Most urgent first: work held and not done, then work failing, then work waiting.
FLAG_ICONS = {
    "stuck": ":material/block:",
    "near-consumer-timeout": ":material/timer:",
    "no-acks": ":material/hourglass_disabled:",
    "redelivery-loop": ":material/autorenew:",
    "dead-letters-growing": ":material/trending_up:",
    "no-consumer": ":material/person_off:",
    "backlog-growing": ":material/stacked_line_chart:",
    "waiting-behind-job": ":material/hourglass_top:",
    "auto-ack": ":material/warning:",
    "unlimited-prefetch": ":material/all_inclusive:",
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


def in_this_vhost(params: dict[str, str]) -> dict[str, str]:
    """`params` with this page's `?vhost=`, so that a link opened in another tab looks at the
    same vhost."""
    vhost = st.query_params.get("vhost")
    return params | ({"vhost": vhost} if vhost else {})


def open_tenant(tenant: str) -> None:
    st.switch_page(TENANT_PAGE, query_params=in_this_vhost({"tenant": tenant}))


def attention_list(items: list[tuple[str, str, Flag]], most: int = 25) -> None:
    """One line per (tenant, subject, flag), each a link to the tenant's page, the most urgent
    kinds first (the order of FLAG_ICONS); at most `most` lines, so that thousands of flagged
    tenants do not become thousands of widgets (the table's Flags column has them all)."""
    urgency = list(FLAG_ICONS)
    ordered = sorted(
        items, key=lambda item: urgency.index(item[2].kind) if item[2].kind in urgency else 99
    )
    if len(ordered) > most:
        st.caption(
            f"The {most} most urgent of {len(ordered):,}; the Flags column of the table has all."
        )
    for tenant, subject, flag in ordered[:most]:
        st.page_link(
            TENANT_PAGE,
            label=f"{literal(subject)}: {literal(flag.reason)}",
            icon=FLAG_ICONS.get(flag.kind, ":material/flag:"),
            query_params=in_this_vhost({"tenant": tenant}),
        )


def flag_kinds(flags: list[Flag]) -> str:
    return ", ".join(flag.kind for flag in flags)
