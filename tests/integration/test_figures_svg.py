"""Figures ready for a journal, read from the SVG the API serves: text kept as text (editable
`<text>` elements, no glyph outlines), censoring marks on cumulative-incidence curves beside their
risk table, forest plots with whole study labels (author, year) and squares not clipped at the
axis, swimmer plots that draw undated events apart (hollow, in their own column) and do not end
such a lane in the "alive" arrow. Marks are found by the ids the figures give them."""

import xml.etree.ElementTree as ET
from typing import Any

from litestar.testing import TestClient

from tests import factories as f

API = "/api/v1"
SVG = "{http://www.w3.org/2000/svg}"


def _svg(client: TestClient[Any], url: str, **params: Any) -> ET.Element:
    response = client.get(url, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    return ET.fromstring(response.content)  # noqa: S314 - our own server's answer


def _texts(svg: ET.Element) -> list[str]:
    return ["".join(t.itertext()).strip() for t in svg.iter(f"{SVG}text")]


def _group(svg: ET.Element, gid: str) -> ET.Element | None:
    return next((g for g in svg.iter(f"{SVG}g") if g.get("id") == gid), None)


def _marks(group: ET.Element | None) -> int:
    return 0 if group is None else len(list(group.iter(f"{SVG}use")))


def test_text_is_text(client: TestClient[Any]) -> None:
    s = f.study(client)
    for i, day in enumerate((30, 60, 90)):
        p = f.patient(client, s["id"], subject_code=f"P{i}")
        f.response(client, p["id"], study_day=10)
        f.event(client, p["id"], event_type="death", study_day=day)
    svg = _svg(client, f"{API}/studies/{s['id']}/survival/plot")
    texts = _texts(svg)
    assert "OS: Kaplan–Meier estimate" in texts
    assert any(t.startswith("Number at risk") for t in texts)
    # no font outlines: matplotlib draws glyphs as <path id="DejaVuSans-…"> unless text stays text
    assert not [p for p in svg.iter(f"{SVG}path") if (p.get("id") or "").startswith("DejaVu")]


def test_cumulative_incidence_marks_censorings_over_its_risk_table(client: TestClient[Any]) -> None:
    s = f.study(client)
    # CR on day 10; relapse at 40, death in CR at 70, three censored (last seen 50, 50 and 90)
    for i, (kind, day) in enumerate(
        (
            ("relapse", 40),
            ("death", 70),
            ("last_follow_up", 50),
            ("last_follow_up", 50),
            ("last_follow_up", 90),
        )
    ):
        p = f.patient(client, s["id"], subject_code=f"P{i}")
        f.response(client, p["id"], study_day=10, date=None)
        f.event(client, p["id"], event_type=kind, study_day=day)
    answer = client.get(f"{API}/studies/{s['id']}/cumulative-incidence").json()
    [group] = answer["groups"]
    assert [(c["time"], c["n_censor"]) for c in group["censorings"]] == [(40.0, 2), (80.0, 1)]
    svg = _svg(client, f"{API}/studies/{s['id']}/cumulative-incidence/plot")
    for cause in ("relapse", "non_relapse_mortality"):
        assert _marks(_group(svg, f"censor-marks-0-{cause}")) == 2  # one mark per censoring time
    texts = _texts(svg)
    assert "censored" in texts
    assert any(t.startswith("Number at risk (cumulative relapse") for t in texts)


def test_forest_labels_are_whole_and_squares_are_not_clipped(client: TestClient[Any]) -> None:
    long_title = (
        "Venetoclax plus blinatumomab as first-line therapy for newly diagnosed Ph-negative B-cell acute "
        "lymphoblastic leukemia: a single-centre retrospective series"
    )
    studies = [
        ({"citation": "Voruz S, Blum S, de Leval L. Daratumumab and venetoclax.", "year": 2023}, "A"),
        ({"citation": "Letter to the Editor (no authors given)."}, long_title),
        (None, "Every patient responded"),
    ]
    for i, (publication, title) in enumerate(studies):
        s = f.study(
            client,
            design="single_arm_trial",
            title=title,
            **({"publication": publication} if publication else {}),
        )
        for j in range(6):
            p = f.patient(client, s["id"], subject_code=f"S{i}P{j}")
            f.response(client, p["id"], category="CR" if i == 2 or j < 3 else "NR")
    evidence = client.get(f"{API}/evidence/response-rates").json()
    labels = {r["study_title"]: r["study_label"] for r in evidence["rows"]}
    assert labels == {
        "A": "Voruz et al., 2023",
        long_title: long_title,
        "Every patient responded": "Every patient responded",
    }
    svg = _svg(client, f"{API}/evidence/response-rates/forest-plot")
    joined = " ".join(_texts(svg))
    for label in labels.values():
        assert " ".join(label.split()) in " ".join(joined.split()), label  # whole, wrapped over lines
    squares = [g for g in svg.iter(f"{SVG}g") if (g.get("id") or "").startswith("study-square-")]
    assert len(squares) == 3
    for square in squares:  # the 100 % square sits on the axis edge, drawn whole
        assert not [e for e in square.iter() if e.get("clip-path")]


def test_swimmer_draws_undated_events_apart(client: TestClient[Any]) -> None:
    s = f.study(client)
    dated, undated_relapse, undated_death = (
        f.patient(client, s["id"], subject_code=code) for code in ("D1", "U1", "U2")
    )
    for p in (dated, undated_relapse, undated_death):
        f.treatment(client, p["id"], start_day=1, end_day=28)
        f.response(client, p["id"], study_day=28, category="SD")
    f.event(
        client, undated_relapse["id"], event_type="relapse", study_day=None, timing_text="during follow-up"
    )
    f.event(client, undated_death["id"], event_type="death", study_day=None, timing_text="later")
    svg = _svg(client, f"{API}/studies/{s['id']}/swimmer-plot")
    assert _marks(_group(svg, "undated-D-d62728")) == 1  # the relapse, hollow, in its own column
    assert _marks(_group(svg, "undated-X-000000")) == 1  # the death
    assert _marks(_group(svg, "alive")) == 1  # only D1 ends in the arrow
    texts = _texts(svg)
    assert "hollow: recorded without a day" in texts and "day not\nknown".replace("\n", "") in "".join(texts)
    # the SD square is darker than the grey lane it sits on, and outlined
    styles = [u.get("style") or "" for u in svg.iter(f"{SVG}use")]
    assert any("fill: #636363" in st and "stroke: #222222" in st for st in styles)
