"""The console's start-up (Streamlit's `st.App` lifespan): before the first browser comes, the
server is guarded, and the console warms what its first page would otherwise wait for.

Measured at 10,000 tenant queues: the first page after a start waited for the libraries its
pages import (pandas, plotly, pyarrow: about 0.9 s on this machine) and for the first poll of
the overview (the topology without statistics and the counts: about 0.7 s). With the service
user (WARREN_AUTH=service) the default vhost's polls start at once; with logins, only the
libraries are warmed (there is no user yet to poll as). A poll nobody reads stops after
three intervals, as any poll does, and the first page after that polls again.
"""

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from dashboard.errors import WarrenError
from dashboard.settings import load_settings
from pages.components.server_guards import guard_server

_LOGGER = logging.getLogger(__name__)


@asynccontextmanager
async def warm_up(_app) -> AsyncIterator[None]:
    guard_server()
    threading.Thread(target=_warm, daemon=True, name="warren-warm-up").start()
    yield


def _warm() -> None:
    import pandas  # noqa: F401  (the libraries the pages use, imported once per process)
    import plotly.graph_objects  # noqa: F401
    import pyarrow  # noqa: F401  (what st.dataframe sends its tables with)

    # Imported here, once Streamlit's runtime runs: its caches look for it when they are made.
    from pages.components import state

    try:
        state.warm_default_polls(load_settings())
    except WarrenError as exc:
        _LOGGER.warning("the first poll before any page failed: %s", exc)
