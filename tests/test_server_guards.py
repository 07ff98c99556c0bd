"""What the console's server refuses to any browser session (the wire-level ones, uploads and
the Host header, are in test_browser.py)."""

from types import SimpleNamespace

import streamlit as st
from streamlit.runtime.app_session import AppSession

from pages.components.server_guards import guard_server


def test_a_browser_session_asking_to_clear_the_caches_clears_only_its_own_state():
    computed = []

    @st.cache_resource
    def shared(key: str) -> str:
        computed.append(key)
        return key

    shared("every user's")
    sender = SimpleNamespace(_session_state={"warren-login": ("pol", "secret")})
    guard_server()

    AppSession._handle_clear_cache_request(sender)
    shared("every user's")

    assert computed == ["every user's"]
    assert sender._session_state == {}
