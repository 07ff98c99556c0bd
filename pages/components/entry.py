"""Every page runs behind the entry script (settings, sidebar, navigation), even on a deep link.

Until `st.navigation` has run once in a server process, Streamlit 1.67 treats `pages/` as an
old-style pages directory (`PagesManager.uses_pages_directory`, set when the first session
starts) and runs a deep-linked page file on its own, skipping the entry script. Streamlit has no
supported switch for this (checked in 1.67: no config option, and `st.navigation` is what turns
the mode off), and the design card keeps `pages/`. So the one place that gives a page its
session, `state.current_session`, calls this first: it switches that mode off and reruns, once
per browser session, and the entry script then runs and routes to the page. The attribute is a
private one: pyproject.toml pins Streamlit to 1.67.x for it.
"""

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

RERUN_DONE = "warren-entry-rerun-done"


def behind_the_entry_script() -> None:
    # Streamlit's AppTest restores the old mode before every run; the once-per-session rule
    # keeps a test's button clicks from being lost to a second rerun.
    if PagesManager.uses_pages_directory and not st.session_state.get(RERUN_DONE):
        PagesManager.uses_pages_directory = False
        st.session_state[RERUN_DONE] = True
        st.rerun()
