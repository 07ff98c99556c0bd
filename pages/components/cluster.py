"""On every page: a banner for each alarm in the cluster, and in the sidebar the node Warren
reads from."""

import streamlit as st

from dashboard.broker.session import Session
from dashboard.errors import Forbidden
from dashboard.reads.nodes import Cluster
from dashboard.reads.poll import Snapshot
from pages.components.formatting import literal
from pages.components.state import shared_cluster_poll


def show_alarms(session: Session) -> None:
    st.fragment(run_every=session.settings.refresh_seconds)(_alarms)(session)


def _alarms(session: Session) -> None:
    snapshot = shared_cluster_poll(session).get()
    # When the broker does not answer, the page's own banner says so.
    if snapshot.data is None or snapshot.stale:
        return
    for sentence in snapshot.data.alarms:
        st.error(literal(sentence), icon=":material/warning:")


def nodes_hidden(snapshot: Snapshot[Cluster]) -> bool:
    """The broker knows the user but will not show it the nodes (it lacks the tag): not a broker
    in trouble, so no outage banner."""
    return isinstance(snapshot.error, Forbidden)


def show_reading_from(session: Session) -> None:
    st.fragment(run_every=session.settings.refresh_seconds)(_reading_from)(session)


def _reading_from(session: Session) -> None:
    snapshot = shared_cluster_poll(session).get()
    if nodes_hidden(snapshot):
        st.caption("The cluster's nodes are hidden: they need the `monitoring` tag.")
        return
    if snapshot.data is None:
        st.caption(f"Not answering: {literal(str(snapshot.error))}")
        return
    cluster = snapshot.data
    running = sum(node.running for node in cluster.nodes)
    stale = " (not answering now)" if snapshot.stale else ""
    st.caption(
        f"RabbitMQ {literal(cluster.version)}. Reading from {literal(cluster.read_from_node)} "
        f"at {literal(cluster.read_from)}{stale}; {running} of {len(cluster.nodes)} nodes running."
    )
