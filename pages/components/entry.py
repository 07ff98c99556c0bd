"""Every page runs behind the entry script (settings, sidebar, navigation), even on a deep link."""

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

RERUN_DONE = "warren-entry-rerun-done"


def behind_the_entry_script() -> None:
    """Until st.navigation has run once in a server process, Streamlit treats `pages/` as an
    old-style pages directory and runs a deep-linked page file on its own, skipping the entry
    script. Switch that mode off and rerun, once per session: the entry script then runs and
    routes to this page. (Streamlit's AppTest restores the old mode before every run; the
    once-per-session rule keeps a test's button clicks from being lost to a second rerun.)
    """
    if PagesManager.uses_pages_directory and not st.session_state.get(RERUN_DONE):
        PagesManager.uses_pages_directory = False
        st.session_state[RERUN_DONE] = True
        st.rerun()
