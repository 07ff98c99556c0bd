"""What Streamlit's server accepts from any browser session, closed where the console is shared:
uploads only from sessions shown an uploader, no session clearing every user's caches, and no
session counts for anyone who asks.

All three wrap private parts of Streamlit's runtime (pyproject.toml pins Streamlit to 1.67.x), since
Streamlit has no setting for either.

Uploads. Streamlit accepts a file for any live browser session at
`/_stcore/upload_file/<session>/<id>` and keeps it in memory until the session ends, whether or
not that session has an uploader or has logged in (measured on 1.67: eight 190 MB uploads from
the login form took the console from 171 MB to 1.7 GB). The server's upload manager is wrapped
to refuse, with 403, a file for a session that no logged-in page has shown an uploader.
`server.maxUploadSize` (.streamlit/config.toml) bounds each file.

Caches. Any session may send Streamlit's "clear caches" message (its menu hides the item, the
server still obeys: 34,769 in 60 s were), and the caches hold every user's sessions and polls.
It clears only the sender's own session state (which logs it out) and is logged.

Metrics. `/_stcore/metrics` answers anyone, logged in or not, how many sessions are open and how
big each cache is. Nothing of Warren's reads it: its stats manager reports no family, so the
endpoint answers an empty document.
"""

import logging
import threading

from starlette.exceptions import HTTPException
from streamlit.runtime import Runtime
from streamlit.runtime.app_session import AppSession
from streamlit.runtime.scriptrunner import get_script_run_ctx

_LOGGER = logging.getLogger(__name__)
GUARDED = "_warren_guarded"
# The ids of the browser sessions a logged-in page showed an uploader to.
_UPLOADERS: set[str] = set()
_LOCK = threading.Lock()


def guard_server() -> None:
    """The guards, installed once per server process: at its start (pages/components/start.py),
    and again by every run of the entry script (AppTest runs scripts with no start-up)."""
    AppSession._handle_clear_cache_request = _clear_own_state_only
    if Runtime.exists():  # Streamlit's AppTest runs scripts without a server
        _guard_uploads(Runtime.instance())
        _silence_metrics(Runtime.instance())


def _clear_own_state_only(session: AppSession) -> None:
    _LOGGER.warning("A browser session asked to clear every cache: only its own state was.")
    session._session_state.clear()


def _silence_metrics(runtime: Runtime) -> None:
    runtime.stats_mgr.registered_families = list
    runtime.stats_mgr.get_stats = lambda family_names=None: {}


def _guard_uploads(runtime: Runtime) -> None:
    manager = runtime.uploaded_file_mgr
    if getattr(manager, GUARDED, False):
        return
    add_file = manager.add_file

    def add_file_if_shown(session_id: str, file) -> None:
        if session_id not in _UPLOADERS:
            raise HTTPException(status_code=403, detail="No uploader here: log in first.")
        add_file(session_id=session_id, file=file)

    manager.add_file = add_file_if_shown
    setattr(manager, GUARDED, True)


def accept_uploads() -> None:
    """This browser session, logged in, is shown an uploader: its files are accepted."""
    context = get_script_run_ctx()
    if context is None or not Runtime.exists():
        return
    runtime = Runtime.instance()
    with _LOCK:
        ended = {session for session in _UPLOADERS if not runtime.is_active_session(session)}
        _UPLOADERS.difference_update(ended)
        _UPLOADERS.add(context.session_id)
