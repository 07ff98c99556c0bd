"""Every page runs behind the entry script (settings, sidebar, navigation), even on a deep link."""

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def behind_the_entry_script() -> None:
    """Until st.navigation has run once in a server process, Streamlit treats `pages/` as an
    old-style pages directory and runs a deep-linked page file on its own, skipping the entry
    script. Switch that mode off and rerun: the entry script then runs and routes to this page.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
