"""The console's start-up (Streamlit's `st.App` lifespan), which runs before the server takes
its first browser: the server is guarded, and what a first page would otherwise wait for starts
at once, beside the server.

Measured at 10,000 tenant queues, the first page after a start waited for the libraries its
pages import (pandas, plotly, pyarrow: about 0.9 s on this machine) and for the first poll of
the overview (the topology without statistics and the counts: about 0.7 s). With the service
user (WARREN_AUTH=service) the default vhost's overview poll starts in one thread, what the
sidebar asks (the user, the vhosts, the cluster poll) in another, and a third imports the
libraries; with logins, only the libraries are imported (there is no user yet to poll as).
The server does not wait for them: holding it back until they were done made the
first page's own wait shorter but the time from the start to the first page longer (7.7 s
against 5.6 s), since the page's own work no longer ran beside them. A poll nobody reads stops
after three intervals, as any poll does, and the first page after that polls again.
"""

import inspect
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from dashboard.errors import WarrenError
from dashboard.settings import load_settings
from dashboard.tuning import tune_garbage_collector
from pages.components.server_guards import guard_server

_LOGGER = logging.getLogger(__name__)


@asynccontextmanager
async def warm_up(_app) -> AsyncIterator[None]:
    guard_server()
    tune_garbage_collector()  # before the first poll, as the pages do
    threading.Thread(target=_first_polls, daemon=True, name="warren-warm-up-polls").start()
    yield


def _first_polls() -> None:
    # Imported here, once Streamlit's runtime runs: its caches look for it when they are made.
    from pages.components import state

    # Only now: the first poll is what a first page waits for longest, and the libraries'
    # import would share the interpreter with the poll's own import.
    threading.Thread(target=_libraries, daemon=True, name="warren-warm-up-libraries").start()
    try:
        state.warm_default_polls(load_settings())
    except WarrenError as exc:
        _LOGGER.warning("the start-up could not start the first polls: %s", exc)


def _libraries() -> None:
    import pandas  # noqa: F401  (the libraries the pages use, imported once per process)
    import plotly.graph_objects  # noqa: F401
    import pyarrow  # noqa: F401  (what st.dataframe sends its tables with)

    # Streamlit's first element in a process asks inspect.stack() whether it runs in a REPL,
    # and inspect then finds the file of every module loaded (a fifth of the first page's
    # script run in a profile at 10,000 tenants): asked once here, its answers are kept.
    inspect.stack()
