"""Consumers: which pod holds how much of which tenant's queue, and which pod is stuck."""

import streamlit as st

from dashboard.reads.consumers import pods_of
from dashboard.reads.models import ConsumerLoad
from pages.components.blocks import fitted_table, headline
from pages.components.consumer_table import show_consumer_table, shown_in_part
from pages.components.formatting import literal
from pages.components.freshness import show_freshness
from pages.components.navigation import attention_list, filter_box, flag_kinds
from pages.components.pod_actions import show_pod_returns, show_returned
from pages.components.state import current_session, shared_consumers_poll

POD_COLUMNS = {
    "connection": st.column_config.TextColumn("Pod (connection)"),
    "consumers": st.column_config.NumberColumn("Consumers", format="localized"),
    "unacked": st.column_config.NumberColumn("Unacked", format="localized"),
    "prefetch": st.column_config.NumberColumn(
        "Prefetch", format="localized", help="Sum over its consumers; 0 is unlimited."
    ),
    "queues": st.column_config.ListColumn("Queues"),
    "flags": st.column_config.TextColumn("Flags"),
}

session = current_session()
settings = session.settings
poll = shared_consumers_poll(session)

st.title("Consumers")
query = filter_box("Filter by pod, queue or tenant", "part of a pod, queue or tenant name")


def matches(load: ConsumerLoad, needle: str) -> bool:
    names = [load.connection, load.queue, *load.tenants]
    return any(needle in name.casefold() for name in names)


def show_headline(loads: list[ConsumerLoad]) -> None:
    pods = pods_of(loads)
    headline(
        {
            "Pods": len(pods),
            "Consumers": len(loads),
            "Unacked": sum(pod.unacked for pod in pods),
            "Flagged": sum(1 for load in loads if _needs_attention(load)),
        }
    )


def _needs_attention(load: ConsumerLoad) -> bool:
    return any(flag.kind != "idle" for flag in load.flags)


def show_attention(loads: list[ConsumerLoad]) -> None:
    linked = [
        (load.tenants[0], f"{load.connection} on {load.queue}", flag)
        for load in loads
        if load.tenants
        for flag in load.flags
        if flag.kind != "idle"
    ]
    unlinked = [
        (load, flag)
        for load in loads
        if not load.tenants
        for flag in load.flags
        if flag.kind != "idle"
    ]
    if linked or unlinked:
        st.subheader("Needs attention")
        attention_list(linked)
        for load, flag in unlinked:
            st.markdown(
                f"**{literal(load.connection)}** on {literal(load.queue)}: {literal(flag.reason)}"
            )


def show_tables(loads: list[ConsumerLoad]) -> None:
    st.subheader("Pods")
    fitted_table(
        [pod.model_dump() | {"flags": flag_kinds(pod.flags)} for pod in pods_of(loads)],
        POD_COLUMNS,
    )
    st.subheader("Consumers")
    show_consumer_table([load for load in loads if load.work])
    if any(load.channel_consumers > 1 for load in loads):
        st.caption(
            "Unacked counts are kept per channel: consumers sharing a channel show its total."
        )
    other = [load for load in loads if not load.work]
    if other:
        with st.expander(f"Not work: {len(other):,} consumers of other queues"):
            st.caption(
                "Queues that are neither a tenant's nor where its dead letters go: a worker "
                "framework's own (Celery's pidbox and events), reply queues, other "
                "applications'. Not the tenants' jobs, so not flagged."
            )
            show_consumer_table(other, ("connection", "queue", "consumer_tag", "prefetch"))


@st.fragment(run_every=settings.refresh_seconds)
def live_consumers() -> None:
    snapshot = poll.get()
    show_freshness(snapshot)
    show_returned()
    if snapshot.data is None:
        return
    in_part = shown_in_part(snapshot.data, settings.username)
    needle = query.casefold()
    loads = [load for load in snapshot.data.loads if matches(load, needle)]
    if not snapshot.data.loads:
        if not in_part:
            st.info(
                f"No consumer is connected to vhost {literal(settings.vhost)}. Worker pods "
                "appear here once they consume a queue."
            )
    elif not loads:
        st.info("No pod, queue or tenant matches the filter. Clear it to see all consumers.")
    else:
        show_headline(loads)
        show_attention(loads)
        # Whole pods: a return closes a connection, with all it holds on any queue.
        shown = {load.connection_id for load in loads}
        pods = [pod for pod in pods_of(snapshot.data.loads) if pod.connection_id in shown]
        show_pod_returns(session, pods, "consumers")
        show_tables(loads)


live_consumers()
