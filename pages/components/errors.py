"""The one way a page shows a failure: the core's sentence, never a stack trace."""

from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from dashboard.errors import WarrenError
from pages.components.formatting import literal

T = TypeVar("T")


def or_error(call: Callable[[], T]) -> T | None:
    """`call()`; when it fails with a WarrenError, that error's sentence on the page and None."""
    try:
        return call()
    except WarrenError as exc:
        st.error(literal(str(exc)))
        return None
