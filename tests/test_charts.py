"""The count charts' y axis: whole messages, ticked a whole, round step apart at any maximum."""

import pytest

from dashboard.reads.history import Point
from pages.components.charts import counts_figure


@pytest.mark.parametrize(
    ("most", "step"), [(0, 1), (2, 1), (5, 1), (7, 2), (10, 2), (40, 10), (1500, 500)]
)
def test_count_ticks_are_whole_and_round(most, step):
    figure = counts_figure([Point(0, most, 0), Point(10, None, None), Point(20, 0, 1)], "q")
    axis = figure.layout.yaxis
    assert (axis.tickmode, axis.tick0, axis.dtick, axis.tickformat) == ("linear", 0, step, ",d")
    assert axis.title.text == "Messages"
