"""Nodes: each node of the cluster, running or not, its alarms, memory, disk and file handles."""

from datetime import timedelta

import streamlit as st

from dashboard.broker.models import NodeInfo
from pages.components.blocks import table_of
from pages.components.cluster import nodes_hidden
from pages.components.formatting import literal
from pages.components.freshness import show_freshness
from pages.components.state import current_session, shared_cluster_poll

COLUMNS = {
    "node": st.column_config.TextColumn("Node"),
    "running": st.column_config.CheckboxColumn("Running"),
    "alarms": st.column_config.TextColumn("Alarms"),
    "memory": st.column_config.ProgressColumn(
        "Memory of watermark", format="percent", min_value=0, max_value=1,
        help="At 100% the memory alarm blocks every publisher on the cluster.",
    ),
    "disk_free_gb": st.column_config.NumberColumn("Disk free (GB)", format="%.1f"),
    "disk_limit_gb": st.column_config.NumberColumn("Disk limit (GB)", format="%.2f"),
    "fds": st.column_config.ProgressColumn(
        "File descriptors", format="percent", min_value=0, max_value=1
    ),
    "uptime": st.column_config.TextColumn("Uptime"),
    "partitions": st.column_config.ListColumn("Cannot reach"),
}  # fmt: skip

session = current_session()
settings = session.settings
poll = shared_cluster_poll(session)
st.title("Nodes")


def row(node: NodeInfo) -> dict:
    alarms = [
        name for name, on in (("memory", node.mem_alarm), ("disk", node.disk_free_alarm)) if on
    ]
    return {
        "node": node.name,
        "running": node.running,
        "alarms": ", ".join(alarms),
        "memory": _share(node.mem_used, node.mem_limit),
        "disk_free_gb": _gigabytes(node.disk_free),
        "disk_limit_gb": _gigabytes(node.disk_free_limit),
        "fds": _share(node.fd_used, node.fd_total),
        "uptime": str(timedelta(seconds=node.uptime // 1000)) if node.uptime else "",
        "partitions": node.partitions,
    }


def _share(used: int | None, total: int | None) -> float | None:
    return used / total if used is not None and total else None


def _gigabytes(count: int | None) -> float | None:
    return count / 1e9 if count is not None else None


@st.fragment(run_every=settings.refresh_seconds)
def live_nodes() -> None:
    snapshot = poll.get()
    if nodes_hidden(snapshot):
        st.info(
            f"User {literal(repr(session.username))} may not read the cluster's nodes: the broker "
            "shows them only to users tagged monitoring or administrator. Memory and disk "
            "alarms are not shown to it either.",
            icon=":material/visibility_off:",
        )
        return
    show_freshness(snapshot)
    if snapshot.data is None:
        return
    cluster = snapshot.data
    st.caption(
        "When the node Warren reads from (see the sidebar) stops answering, Warren reads from "
        "the next node of WARREN_MANAGEMENT_URL."
    )
    if not cluster.alarms:
        st.success("Every node runs, with no alarm and no partition.", icon=":material/check:")
    table = table_of([row(node) for node in cluster.nodes], COLUMNS)
    st.dataframe(table, column_config=COLUMNS, hide_index=True, width="stretch", placeholder="")


live_nodes()
