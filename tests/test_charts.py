"""The count charts' y axis: whole messages, ticked a whole, round step apart at any maximum."""

import pytest

from dashboard.reads.history import Point, Sample, spaced
from pages.components.charts import counts_figure


@pytest.mark.parametrize(
    ("most", "step"), [(0, 1), (2, 1), (5, 1), (7, 2), (10, 2), (40, 10), (1500, 500)]
)
def test_count_ticks_are_whole_and_round(most, step):
    figure = counts_figure([Point(0, most, 0), Point(10, None, None), Point(20, 0, 1)], "q")
    axis = figure.layout.yaxis
    assert (axis.tickmode, axis.tick0, axis.dtick, axis.tickformat) == ("linear", 0, step, ",d")
    assert axis.title.text == "Messages"


def test_redeliveries_are_drawn_as_their_increase_over_the_window_across_a_reset():
    counts = [(0, 5), (10, 7), (20, None), (30, 2), (40, 4)]  # the broker restarted after 20 s
    points = spaced([(Sample(at, 1, 0, 0, None, redelivered), 15) for at, redelivered in counts])
    assert [point.redelivered for point in points] == [0, 2, None, 4, 6]

    figure = counts_figure(points, "q")
    assert [trace.name for trace in figure.data] == ["Ready", "Unacked", "Redelivered"]
    assert figure.layout.yaxis.dtick == 2  # the axis reaches the redeliveries too


def test_a_chart_without_redeliveries_draws_no_such_line():
    figure = counts_figure([Point(0, 3, 1, 0), Point(10, 4, 1, 0)], "q")
    assert [trace.name for trace in figure.data] == ["Ready", "Unacked"]
