"""Settings and the shared polls, cached once per process for every browser session."""

import streamlit as st

from dashboard.errors import SettingsError
from dashboard.models import Overview
from dashboard.poll import SharedPoll, overview_poll
from dashboard.settings import Settings, load_settings
from pages.components.formatting import literal


def current_settings() -> Settings:
    """The settings, or a one-line error on the page and nothing else."""
    try:
        return load_settings()
    except SettingsError as exc:
        st.error(literal(str(exc)), icon=":material/settings_alert:")
        st.stop()


# A few entries only: each new configuration (an edited .env) gets its own poll.
@st.cache_resource(show_spinner=False, max_entries=4)
def _overview_poll(fingerprint: str, _settings: Settings) -> SharedPoll[Overview]:
    return overview_poll(_settings)


def shared_overview_poll(settings: Settings) -> SharedPoll[Overview]:
    return _overview_poll(settings.fingerprint(), settings)
