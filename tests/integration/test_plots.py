"""Plots a clinician reads: the test's p on the figure, the legend outside the curves,
whole-number ticks at the number-at-risk times, coloured at-risk rows, a message instead of empty
axes, the forest plot's rows, diamond and prediction interval, and a swimmer plot grouped by arm
whose legend lists only the symbols drawn. Figures are built from the API's own answers."""

import io
from collections import namedtuple
from typing import Any
from uuid import uuid4

import msgspec
from litestar.testing import TestClient
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from service.analytics.plots import figures as plots
from service.analytics.schemas import CumulativeIncidence, Survival
from service.evidence.schemas import Evidence
from tests import factories as f

API = "/api/v1"


def _two_arms(client: TestClient[Any]) -> str:
    s = f.study(client)
    for label, deaths in (("Control", [20, 35, 50, 80]), ("Experimental", [60, 90, 0, 0])):
        arm = f.arm(client, s["id"], label=label)
        for i, day in enumerate(deaths):
            p = f.patient(client, s["id"], subject_code=f"{label[0]}{i}", arm_id=arm["id"])
            f.response(client, p["id"], study_day=10, category="CR")
            if day:
                f.event(client, p["id"], event_type="relapse" if i % 2 else "death", study_day=day)
            else:
                f.event(client, p["id"], event_type="last_follow_up", study_day=120)
    return str(s["id"])


def _texts(figure: Figure) -> list[str]:
    return [t.get_text() for axis in figure.axes for t in axis.texts] + [t.get_text() for t in figure.texts]


def _legend_is_outside(figure: Figure) -> None:
    FigureCanvasAgg(figure).draw()
    axis = figure.axes[0]
    assert axis.get_legend().get_window_extent().x0 >= axis.get_window_extent().x1


def test_kaplan_meier_plot_shows_the_test_and_keeps_the_curves_clear(client: TestClient[Any]) -> None:
    study_id = _two_arms(client)
    response = client.get(f"{API}/studies/{study_id}/survival", params={"group_by": "arm"})
    result = msgspec.json.decode(response.content, type=Survival)
    figure = plots.kaplan_meier_figure(result, "OS", ci_bands=False)
    assert result.log_rank is not None
    assert f"Log-rank: {plots.format_p(result.log_rank.p_value)}" in _texts(figure)
    _legend_is_outside(figure)
    curve, table = figure.axes
    ticks = list(curve.get_xticks())
    assert ticks == [point.time for point in result.groups[0].at_risk]
    assert all(float(t).is_integer() for t in ticks)
    numbers = [t.get_text() for t in table.texts]
    # number at risk, then the cumulative events and censorings up to the tick
    assert numbers == [f"{p.n_risk} ({p.events}, {p.censored})" for g in result.groups for p in g.at_risk]
    assert table.get_title(loc="left") == "Number at risk (cumulative events, censored)"
    # each group's at-risk row in its curve's colour
    assert [label.get_color() for label in table.get_yticklabels()] == plots.COLORS[:2]
    assert [t.get_color() for t in table.texts] == [
        plots.COLORS[i] for i, g in enumerate(result.groups) for _ in g.at_risk
    ]


def test_an_empty_analysis_set_draws_a_message_not_empty_axes(client: TestClient[Any]) -> None:
    s = f.study(client)
    p = f.patient(client, s["id"])
    f.response(client, p["id"], study_day=28, category="NR")
    result = msgspec.json.decode(
        client.get(f"{API}/studies/{s['id']}/survival", params={"endpoint": "RFS"}).content, type=Survival
    )
    figure = plots.kaplan_meier_figure(result, "RFS", ci_bands=False)
    assert not figure.axes[0].axison
    assert any("No patient is in the RFS analysis set" in t for t in _texts(figure))
    image = client.get(f"{API}/studies/{s['id']}/survival/plot", params={"endpoint": "RFS"})
    assert image.status_code == 200 and image.content.startswith(b"<?xml")


def test_cumulative_incidence_plot_shows_grays_test(client: TestClient[Any]) -> None:
    study_id = _two_arms(client)
    body = client.get(f"{API}/studies/{study_id}/cumulative-incidence", params={"group_by": "arm"}).content
    result = msgspec.json.decode(body, type=CumulativeIncidence)
    figure = plots.cumulative_incidence_figure(result, "CIF")
    [text] = [t for t in _texts(figure) if "Gray's test" in t]
    for test in result.gray_tests:
        assert plots.format_p(test.p_value) in text
    _legend_is_outside(figure)
    # the risk table under the curves: at risk, cumulative events of each cause, censorings
    curve, table = figure.axes
    assert list(curve.get_xticks()) == [point.time for point in result.groups[0].at_risk]
    cells = [t.get_text() for t in table.texts]
    assert cells == [
        f"{p.n_risk} ({p.events['relapse']}/{p.events['non_relapse_mortality']}, {p.censored})"
        for g in result.groups
        for p in g.at_risk
    ]
    last = result.groups[0].at_risk[-1]
    group = result.groups[0]
    assert (
        last.events["relapse"] == group.causes[0].events
        and last.n_risk + sum(last.events.values()) + last.censored >= group.n
    )
    png = client.get(f"{API}/studies/{study_id}/cumulative-incidence/plot.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


def test_forest_plot_has_rows_diamond_and_prediction_interval(client: TestClient[Any]) -> None:
    for design, responders in (
        ("single_arm_trial", (6, 10)),
        ("single_arm_trial", (9, 20)),
        ("single_arm_trial", (3, 8)),
        ("case_report", (1, 1)),
    ):
        s = f.study(client, design=design)
        for i in range(responders[1]):
            p = f.patient(client, s["id"], subject_code=f"P{i}")
            f.response(client, p["id"], study_day=28, category="CR" if i < responders[0] else "NR")
    body = client.get(f"{API}/evidence/response-rates").content
    result = msgspec.json.decode(body, type=Evidence)
    assert [r.not_pooled is None for r in result.rows].count(False) == 1  # the case report
    assert result.pooled is not None and result.pooled.studies == 3
    figure = plots.forest_figure(result)
    texts = _texts(figure)
    assert sum("(not pooled)" in t for t in texts) == 1
    assert "Prediction interval" in texts
    assert any(t.startswith("Random effects, 3 studies") for t in texts)
    assert len(figure.axes[0].patches) == 1  # the diamond
    svg = client.get(f"{API}/evidence/response-rates/forest-plot")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")


def test_forest_plot_of_one_study_pools_nothing_and_names_the_study_count(client: TestClient[Any]) -> None:
    s = f.study(client, design="single_arm_trial")
    for i in range(4):
        f.response(
            client, f.patient(client, s["id"], subject_code=f"P{i}")["id"], study_day=28, category="CR"
        )
    result = msgspec.json.decode(client.get(f"{API}/evidence/response-rates").content, type=Evidence)
    assert result.pooled is None and result.not_computable is not None
    figure = plots.forest_figure(result)
    assert not any("Random effects" in t or "Prediction interval" in t for t in _texts(figure))
    assert "No pooled estimate" in figure.axes[0].get_xlabel()


Treatment = namedtuple("Treatment", "patient_id phase regimen start_day end_day")
Outcome = namedtuple(
    "Outcome", "patient_id kind study_day category possible_categories mrd_status event_type"
)


def test_swimmer_plot_groups_by_arm_marks_ongoing_patients_and_lists_only_symbols_used() -> None:
    a, b, c = uuid4(), uuid4(), uuid4()
    patients = [(a, "A1", "Arm A", 100), (b, "A2", "Arm A", 40), (c, "B1", "Arm B", 200)]
    treatments = [Treatment(a, "induction", None, 1, 28), Treatment(c, "induction", None, 1, 28)]
    outcomes = [
        Outcome(a, "response", 28, "CR", [], "negative", None),
        Outcome(b, "event", 40, None, [], None, "death"),
        Outcome(c, "event", 150, None, [], None, "relapse"),
    ]
    figure = plots.swimmer_figure(patients, treatments, outcomes, "Swimmer")
    axis = figure.axes[0]
    legend = {t.get_text() for t in axis.get_legend().get_texts()}
    assert legend == {
        "follow-up",
        "alive at last recorded day",
        "induction",
        "CR",
        "MRD negative",
        "death",
        "relapse",
    }
    assert [t.get_text() for t in axis.get_yticklabels()] == ["A1", "A2", "B1"]
    assert {t.get_text() for t in axis.texts} == {"Arm A", "Arm B"}
    arrows = [line for line in axis.get_lines() if line.get_marker() == ">"]
    [ongoing] = arrows
    # the two patients alive at their last day, the arrow just past it (clear of a mark on that day)
    assert [round(x) for x in ongoing.get_xdata()] == [104, 204]
    assert not plots.swimmer_figure([], [], [], "Empty").axes[0].axison


def test_a_png_is_cropped_exactly_as_savefigs_tight_box(client: TestClient[Any]) -> None:
    """render() measures the PNG's crop on a renderer of one pixel (it keeps a drawing's peak
    memory to one image): every kind of figure comes out byte for byte as savefig's own
    bbox_inches="tight" draws it, legends and at-risk tables outside the axes included."""
    study_id = _two_arms(client)
    survival = msgspec.json.decode(
        client.get(f"{API}/studies/{study_id}/survival", params={"group_by": "arm"}).content, type=Survival
    )
    incidence = msgspec.json.decode(
        client.get(f"{API}/studies/{study_id}/cumulative-incidence", params={"group_by": "arm"}).content,
        type=CumulativeIncidence,
    )
    a, b = uuid4(), uuid4()
    lanes = [(a, "A1", "Arm A", 100), (b, "B1", "Arm B", 40)]
    drawn = {
        "KM": lambda: plots.kaplan_meier_figure(survival, "OS", ci_bands=True),
        "CIF": lambda: plots.cumulative_incidence_figure(incidence, "CIF"),
        "swimmer": lambda: plots.swimmer_figure(
            lanes,
            [Treatment(a, "induction", None, 1, 28)],
            [
                Outcome(a, "response", 28, "CR", [], "negative", None),
                Outcome(b, "event", None, None, [], None, "death"),
            ],
            "Swimmer with an undated death",
        ),
        "message": lambda: plots.message_figure("Nothing", "The study has no patients on this page."),
    }
    for name, figure in drawn.items():
        tight = io.BytesIO()
        figure().savefig(tight, format="png", bbox_inches="tight", metadata={"Software": None}, dpi=plots.DPI)
        assert plots.render(figure(), "png") == tight.getvalue(), name
