"""Settings, the history store and the shared polls: one of each per configuration, per process,
for every browser session."""

import streamlit as st

from dashboard.access import Access, current_access, log_in
from dashboard.errors import SettingsError, WarrenError
from dashboard.history import History
from dashboard.management import ManagementClient
from dashboard.models import ConsumerReport, Overview
from dashboard.nodes import Cluster
from dashboard.poll import SharedPoll, cluster_poll, consumers_poll, open_history, overview_poll
from dashboard.prometheus import PrometheusHistory
from dashboard.queues import QueueDetail, fetch_queue_detail
from dashboard.settings import Settings, load_settings
from pages.components.formatting import literal

LOGIN = "warren-login"


def current_settings() -> Settings:
    """This session's settings: with WARREN_AUTH=login, as the user who logged in (until then
    the login form and nothing else). A bad setting is a one-line error and nothing else."""
    settings = logged_in_settings()
    if settings is None:
        show_login(_loaded_settings())
        st.stop()
    return settings


def logged_in_settings() -> Settings | None:
    """This session's settings, or None while it has to log in (the page shows the form)."""
    settings = _loaded_settings()
    if settings.auth == "service":
        return settings
    login = st.session_state.get(LOGIN)
    return settings.as_user(*login) if login else None


def _loaded_settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        st.error(literal(str(exc)), icon=":material/settings_alert:")
        st.stop()


def show_login(settings: Settings) -> None:
    st.title("Warren")
    st.caption(
        f"Log in with your user on the broker at {literal(settings.management_url)}: its "
        "permissions apply to everything you see and do here."
    )
    with st.form("login"):
        username = st.text_input("User", key="login-user")
        password = st.text_input("Password", type="password", key="login-password")
        if not st.form_submit_button("Log in", type="primary"):
            return
    try:
        log_in(settings, username, password)
    except WarrenError as exc:
        st.error(literal(str(exc)))
        return
    st.session_state[LOGIN] = (username, password)
    st.rerun()


def log_out() -> None:
    st.session_state.pop(LOGIN, None)
    st.cache_data.clear()


@st.cache_data(ttl=60, show_spinner=False, max_entries=64)
def _access(fingerprint: str, _settings: Settings) -> Access:
    return current_access(_settings)


def shared_access(settings: Settings) -> Access:
    """What this session's user may do, asked once a minute; while the broker cannot say, the
    console only looks (the core would refuse changes anyway)."""
    try:
        return _access(settings.fingerprint(), settings)
    except WarrenError as exc:
        return Access(
            user=settings.username,
            tags=[],
            refusal=f"Warren cannot ask the broker what {settings.username!r} may do ({exc})",
        )


# Keyed by the settings' fingerprint: each configuration (an edited .env, or each user who
# logged in) gets its own; a bounded number, so old ones do not pile up.
@st.cache_resource(show_spinner=False, max_entries=32)
def _history(fingerprint: str, _settings: Settings) -> History | None:
    return open_history(_settings)


@st.cache_resource(show_spinner=False, max_entries=32)
def _overview_poll(fingerprint: str, _settings: Settings) -> SharedPoll[Overview]:
    return overview_poll(_settings, shared_history(_settings))


@st.cache_resource(show_spinner=False, max_entries=32)
def _consumers_poll(fingerprint: str, _settings: Settings) -> SharedPoll[ConsumerReport]:
    return consumers_poll(_settings)


@st.cache_resource(show_spinner=False, max_entries=32)
def _cluster_poll(fingerprint: str, _settings: Settings) -> SharedPoll[Cluster]:
    return cluster_poll(_settings)


@st.cache_resource(show_spinner=False, max_entries=32)
def _client(fingerprint: str, _settings: Settings) -> ManagementClient:
    return ManagementClient(_settings)


def shared_client(settings: Settings) -> ManagementClient:
    """One HTTP session per configuration, for the reads pages make on demand."""
    return _client(settings.fingerprint(), settings)


@st.cache_data(ttl=5, show_spinner=False, max_entries=64)
def queue_detail(fingerprint: str, _settings: Settings, queue: str) -> QueueDetail:
    """A queue's arguments and the broker's samples of its counts, shared for a few seconds."""
    return fetch_queue_detail(shared_client(_settings), _settings.vhost, queue)


@st.cache_resource(show_spinner=False, max_entries=32)
def _prometheus(fingerprint: str, _settings: Settings) -> PrometheusHistory:
    return PrometheusHistory(_settings.prometheus_url, _settings.request_timeout)


def shared_prometheus(settings: Settings) -> PrometheusHistory:
    return _prometheus(settings.fingerprint(), settings)


def shared_history(settings: Settings) -> History | None:
    return _history(settings.fingerprint(), settings)


def shared_overview_poll(settings: Settings) -> SharedPoll[Overview]:
    return _overview_poll(settings.fingerprint(), settings)


def shared_consumers_poll(settings: Settings) -> SharedPoll[ConsumerReport]:
    return _consumers_poll(settings.fingerprint(), settings)


def shared_cluster_poll(settings: Settings) -> SharedPoll[Cluster]:
    return _cluster_poll(settings.fingerprint(), settings)
