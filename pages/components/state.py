"""Settings, the history store and the shared polls: one of each per configuration, per process,
for every browser session."""

import streamlit as st

from dashboard.errors import SettingsError
from dashboard.history import History
from dashboard.management import ManagementClient
from dashboard.models import ConsumerReport, Overview
from dashboard.poll import SharedPoll, consumers_poll, open_history, overview_poll
from dashboard.prometheus import PrometheusHistory
from dashboard.queues import QueueDetail, fetch_queue_detail
from dashboard.settings import Settings, load_settings
from pages.components.formatting import literal


def current_settings() -> Settings:
    """The settings, or a one-line error on the page and nothing else."""
    try:
        return load_settings()
    except SettingsError as exc:
        st.error(literal(str(exc)), icon=":material/settings_alert:")
        st.stop()


# Keyed by the settings' fingerprint: each new configuration (an edited .env) gets its own;
# a few entries only, so old ones do not pile up.
@st.cache_resource(show_spinner=False, max_entries=4)
def _history(fingerprint: str, _settings: Settings) -> History | None:
    return open_history(_settings)


@st.cache_resource(show_spinner=False, max_entries=4)
def _overview_poll(fingerprint: str, _settings: Settings) -> SharedPoll[Overview]:
    return overview_poll(_settings, shared_history(_settings))


@st.cache_resource(show_spinner=False, max_entries=4)
def _consumers_poll(fingerprint: str, _settings: Settings) -> SharedPoll[ConsumerReport]:
    return consumers_poll(_settings)


@st.cache_resource(show_spinner=False, max_entries=4)
def _client(fingerprint: str, _settings: Settings) -> ManagementClient:
    return ManagementClient(_settings)


def shared_client(settings: Settings) -> ManagementClient:
    """One HTTP session per configuration, for the reads pages make on demand."""
    return _client(settings.fingerprint(), settings)


@st.cache_data(ttl=5, show_spinner=False, max_entries=64)
def queue_detail(fingerprint: str, _settings: Settings, queue: str) -> QueueDetail:
    """A queue's arguments and the broker's samples of its counts, shared for a few seconds."""
    return fetch_queue_detail(shared_client(_settings), _settings.vhost, queue)


@st.cache_resource(show_spinner=False, max_entries=4)
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
