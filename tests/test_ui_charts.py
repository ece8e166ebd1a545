"""ui.common.bar_chart: the Vega-Lite spec it builds, and its axes options (ui.common.Axes) reaching that spec."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ui.common import AXES_DEFAULTS, PALETTE, bar_chart


def spec(plot) -> dict:
    return json.loads(plot.plot)


RATINGS = pd.DataFrame({"rating": ["1", "5", "1"], "count": [3, 1, 2], "source": ["human", "org/m", "org/m"]})


def test_axes_options_reach_the_spec():
    s = spec(
        bar_chart(
            RATINGS,
            "rating",
            "count",
            color="source",
            title="Ratings",
            empty="none yet",
            x_title="Rating",
            y_title="Answers",
            color_title="Source",
            x_order=["1", "2", "5"],
        )
    )
    enc = s["encoding"]
    assert (enc["x"]["title"], enc["y"]["title"], enc["color"]["title"]) == ("Rating", "Answers", "Source")
    assert enc["x"]["sort"] == ["1", "2", "5"] and enc["y"]["axis"] == {"format": "d", "tickMinStep": 1}
    assert enc["color"]["scale"] == {"domain": ["human", "org/m"], "range": list(PALETTE[:2])}
    assert enc["xOffset"]["field"] == "source"  # grouped side by side, not stacked
    shares = pd.DataFrame({"source": ["human", "org/m"], "rate": [1.0, 0.5]})
    enc = spec(
        bar_chart(shares, "source", "rate", color="source", title="Match", empty="none yet", y_max=1, y_format=".0%")
    )["encoding"]
    assert enc["y"]["scale"] == {"domainMin": 0, "domainMax": 1} and enc["y"]["axis"] == {"format": ".0%"}
    assert "xOffset" not in enc and enc["x"]["title"] == "source"  # no title given: the column's name


def test_defaults_without_options_and_the_empty_sentence():
    enc = spec(bar_chart(RATINGS, "rating", "count", title="Ratings", empty="none yet"))["encoding"]
    assert enc["x"]["sort"] == ["1", "5"] and enc["y"]["axis"]["format"] == AXES_DEFAULTS["y_format"]
    assert "color" not in enc and enc["y"]["scale"] == {"domainMin": 0}
    empty = spec(bar_chart(None, "rating", "count", title="Ratings", empty="Ratings appear here"))
    assert empty["data"] == {"values": [{"text": "Ratings appear here"}]} and empty["mark"]["type"] == "text"


def test_an_unknown_option_is_refused():
    with pytest.raises(TypeError, match="x_titel"):
        bar_chart(RATINGS, "rating", "count", title="Ratings", empty="none yet", x_titel="Rating")  # type: ignore[call-arg]
