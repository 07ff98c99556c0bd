"""Charts: ready, unacked and redelivered over time, labelled with units and time zone, gaps left
as gaps."""

import html
from datetime import UTC, datetime

import plotly.graph_objects as go

from dashboard.reads.history import Point

COLOURS = {"Ready": "#1f77b4", "Unacked": "#e8590c", "Redelivered": "#c92a2a"}


def counts_figure(points: list[Point], title: str) -> go.Figure:
    times = [datetime.fromtimestamp(point.at, UTC) for point in points]
    figure = go.Figure()
    lines = {
        "Ready": [point.ready for point in points],
        "Unacked": [point.unacked for point in points],
        # Only where the source counts redeliveries (Warren's history does).
        "Redelivered": [point.redelivered for point in points],
    }
    for name, values in lines.items():
        if name == "Redelivered" and not any(values):
            continue
        figure.add_trace(
            go.Scatter(
                x=times,
                y=values,
                name=name,
                mode="lines+markers" if len(points) < 30 else "lines",
                line={"color": COLOURS[name]},
                connectgaps=False,
            )
        )
    figure.update_layout(
        # Plotly renders a subset of HTML in titles: a queue name must stay text.
        title=html.escape(title),
        xaxis_title="Time (UTC)",
        yaxis_title="Messages",
        yaxis=count_axis(max_count(points)),
        legend={"orientation": "h", "y": -0.25},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        height=320,
        # Drawn again on every poll: a zoom or a hidden line stays as the user left it.
        uirevision=title,
    )
    return figure


def max_count(points: list[Point]) -> int:
    return max(
        (
            count
            for point in points
            for count in (point.ready, point.unacked, point.redelivered)
            if count
        ),
        default=0,
    )


def count_axis(most: int) -> dict:
    """A y axis of whole messages up to `most`, ticked a whole, round step apart: plotly's own
    ticks for small maxima are fractional, and ",d" would label them "2, 2, 1, 1, 0"."""
    return {
        "rangemode": "tozero",
        "tickformat": ",d",
        "tickmode": "linear",
        "tick0": 0,
        "dtick": whole_step(most),
    }


def whole_step(most: int, ticks: int = 5) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that reaches `most` in at most `ticks` steps."""
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            if most <= factor * magnitude * ticks:
                return factor * magnitude
        magnitude *= 10
