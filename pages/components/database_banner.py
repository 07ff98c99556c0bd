"""On every page: a banner while the audit log's database (the team's PostgreSQL, or the
file) cannot be reached."""

import streamlit as st

from dashboard.actions.audit import database_problem
from dashboard.broker.session import Session
from dashboard.settings import Settings
from pages.components.formatting import literal

# How long a page trusts the last look at the database: a look per rerun would cost a
# connection per click.
LOOK_SECONDS = 10


def show_database_problem(session: Session) -> None:
    problem = _problem(session.settings.fingerprint(), session.settings)
    if problem is not None:
        st.error(literal(problem), icon=":material/storage:")


@st.cache_data(ttl=LOOK_SECONDS, show_spinner=False)
def _problem(fingerprint: str, _settings: Settings) -> str | None:
    return database_problem(_settings)
