"""The console's start-up (Streamlit's `st.App` lifespan), which runs before the server takes
its first browser: the server is guarded, and what a first page would otherwise wait for is
done first.

Measured at 10,000 tenant queues, the first page after a start waited for the libraries its
pages import (pandas, plotly, pyarrow: about 0.9 s on this machine) and for the first poll of
the overview (the topology without statistics and the counts: about 0.7 s). Done in a thread
beside the first page, they slowed it as much as they spared it, so the server answers once
they are done: with the service user (WARREN_AUTH=service) the default vhost's polls have
polled; with logins only the libraries are imported (there is no user yet to poll as). A broker
that is slow or down does not hold the server back for more than WARM_UP_SECONDS: the first
page then waits for the poll itself, as before. A poll nobody reads stops after three
intervals, as any poll does, and the first page after that polls again.
"""

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from dashboard.errors import WarrenError
from dashboard.settings import load_settings
from pages.components.server_guards import guard_server

_LOGGER = logging.getLogger(__name__)
WARM_UP_SECONDS = 15


@asynccontextmanager
async def warm_up(_app) -> AsyncIterator[None]:
    guard_server()
    warming = threading.Thread(target=_warm, daemon=True, name="warren-warm-up")
    warming.start()
    await asyncio.to_thread(warming.join, WARM_UP_SECONDS)
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
