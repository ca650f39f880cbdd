"""Kaplan–Meier and swimmer plots, drawn with matplotlib's non-interactive Agg backend.

Figures are made with `Figure` directly, never through pyplot's global figure registry, so that
worker threads can draw at the same time (service.common.heavy)."""

import io
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Literal
from uuid import UUID

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from service.analytics.schemas import Survival

ImageFormat = Literal["svg", "png"]
# A lane per patient: beyond this a plot is unreadable and slow to draw, so larger studies are
# drawn a page at a time.
MAX_SWIMMER_LANES = 200
MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png"}
COLORS = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]


def render(figure: Figure, image_format: ImageFormat) -> bytes:
    buffer = io.BytesIO()
    # No creation date in the file: the same data gives the same bytes.
    metadata: dict[str, Any] = {"Date": None} if image_format == "svg" else {"Software": None}
    figure.savefig(buffer, format=image_format, bbox_inches="tight", metadata=metadata, dpi=120)
    return buffer.getvalue()


def kaplan_meier_figure(result: Survival, title: str, ci_bands: bool) -> Figure:
    figure = Figure(figsize=(8, 5.5))
    curve, table = figure.subplots(
        2, 1, gridspec_kw={"height_ratios": [4, 1 + 0.25 * len(result.groups)]}, sharex=True
    )
    for index, group in enumerate(result.groups):
        color = COLORS[index % len(COLORS)]
        xs = [0.0] + [p.time for p in group.curve]
        ys = [1.0] + [p.survival for p in group.curve]
        excluded = sum(group.excluded.values())
        label = f"{group.group.label} (n={group.n}, events={group.events}" + (
            f", {excluded} excluded)" if excluded else ")"
        )
        curve.step(xs, ys, where="post", color=color, label=label)
        censored = [(p.time, p.survival) for p in group.curve if p.n_censor > 0]
        if censored:
            curve.plot(*zip(*censored, strict=True), linestyle="none", marker="+", markersize=9, color=color)
        if ci_bands and group.curve:
            lows = [1.0] + [p.lower if p.lower is not None else float("nan") for p in group.curve]
            highs = [1.0] + [p.upper if p.upper is not None else float("nan") for p in group.curve]
            curve.fill_between(xs, lows, highs, step="post", color=color, alpha=0.15, linewidth=0)
        if group.median.time is not None:
            curve.plot([0, group.median.time], [0.5, 0.5], linestyle=":", color=color, linewidth=1)
            curve.plot(
                [group.median.time, group.median.time], [0, 0.5], linestyle=":", color=color, linewidth=1
            )
    withheld = [g for g in result.groups if g.not_computable]
    if withheld:
        # The estimands rule withholds these groups' estimates: the plot says so, not just the JSON.
        names = ", ".join(g.group.label for g in withheld)
        title += f"\n{names}: median not computable (an event without a study day excluded a patient)"
    curve.set_ylim(-0.02, 1.02)
    curve.set_ylabel(f"{result.endpoint} probability")
    curve.set_title(title, fontsize=10 if withheld else None)
    curve.grid(alpha=0.3)
    if result.groups:
        curve.legend(loc="lower left", fontsize=8)
    table.set_xlabel(f"Time ({result.time_unit})")
    table.set_yticks(range(len(result.groups)))
    table.set_yticklabels([g.group.label[:28] for g in result.groups], fontsize=8)
    table.set_ylim(-0.6, len(result.groups) - 0.4)
    table.invert_yaxis()
    table.set_title("Number at risk", fontsize=9, loc="left")
    for index, group in enumerate(result.groups):
        for point in group.at_risk:
            table.text(point.time, index, str(point.n_risk), ha="center", va="center", fontsize=8)
    for spine in ("top", "right", "left"):
        table.spines[spine].set_visible(False)
    table.tick_params(axis="y", length=0)
    return figure


RESPONSE_MARKERS = {
    "CR": ("o", "#2ca02c"),
    "CRi": ("o", "#98df8a"),
    "CRh": ("o", "#bcbd22"),
    "MLFS": ("s", "#17becf"),
    "PR": ("s", "#ffbb78"),
    "SD": ("s", "#c7c7c7"),
    "NR": ("x", "#d62728"),
    "PD": ("x", "#8c564b"),
}
EVENT_MARKERS = {
    "hsct": ("*", "#9467bd"),
    "relapse": ("D", "#d62728"),
    "progression": ("D", "#8c564b"),
    "death": ("X", "#000000"),
    "last_follow_up": (">", "#7f7f7f"),
}
PHASE_COLORS = {
    "induction": "#1f77b4",
    "consolidation": "#aec7e8",
    "salvage": "#ff7f0e",
    "bridging": "#ffbb78",
    "conditioning": "#c5b0d5",
    "hsct": "#9467bd",
    "cellular_therapy": "#e377c2",
    "maintenance": "#7f7f7f",
}


def swimmer_figure(
    patients: Sequence[tuple[UUID, str]], treatments: Sequence[Any], outcomes: Sequence[Any], title: str
) -> Figure:
    lanes = {pid: i for i, (pid, _) in enumerate(patients)}
    figure = Figure(figsize=(9, 1.2 + 0.35 * max(len(patients), 1)))
    axis = figure.subplots()
    # One draw call per phase and per marker style, whatever the number of records.
    bars: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for row in treatments:
        if row.patient_id not in lanes or row.start_day is None:
            continue
        end = row.end_day if row.end_day is not None else row.start_day
        bars[row.phase].append((lanes[row.patient_id], max(end - row.start_day, 0) + 1, row.start_day))
    for phase, items in bars.items():
        ys, widths, lefts = zip(*items, strict=True)
        axis.barh(
            ys,
            widths,
            left=lefts,
            height=0.5,
            color=PHASE_COLORS.get(phase, "#cccccc"),
            edgecolor="none",
            alpha=0.8,
        )
    points: dict[tuple[str, str, int], list[tuple[float, float]]] = defaultdict(list)
    for row in outcomes:
        if row.patient_id not in lanes:
            continue
        y = lanes[row.patient_id]
        if row.kind == "response":
            category = row.category or (
                "/".join(row.possible_categories) if row.possible_categories else None
            )
            marker = RESPONSE_MARKERS.get(row.category or (row.possible_categories or [None])[0] or "")
            if category and marker:
                points[(marker[0], marker[1], 7)].append((row.study_day, y))
            if row.mrd_status == "negative":
                points[("^", "#1f77b4", 5)].append((row.study_day, y + 0.3))
            elif row.mrd_status == "positive":
                points[("v", "#ff7f0e", 5)].append((row.study_day, y + 0.3))
        elif row.kind == "event" and row.event_type in EVENT_MARKERS:
            symbol, color = EVENT_MARKERS[row.event_type]
            points[(symbol, color, 9)].append((row.study_day, y))
    for (symbol, color, size), xy in points.items():
        xs, ys_ = zip(*xy, strict=True)
        axis.plot(xs, ys_, marker=symbol, color=color, linestyle="none", markersize=size)
    axis.set_yticks(range(len(patients)))
    axis.set_yticklabels([code for _, code in patients], fontsize=8)
    axis.invert_yaxis()
    axis.axvline(1, color="#999999", linewidth=0.8, linestyle="--")
    axis.set_xlabel("Study day (day 1 = first day of study treatment)")
    axis.set_title(title)
    axis.grid(axis="x", alpha=0.3)
    handles = [
        Line2D([], [], color=c, linewidth=6, label=p.replace("_", " ")) for p, c in PHASE_COLORS.items()
    ]
    handles += [
        Line2D([], [], marker=m, color=c, linestyle="none", label=k) for k, (m, c) in RESPONSE_MARKERS.items()
    ]
    handles += [
        Line2D([], [], marker="^", color="#1f77b4", linestyle="none", label="MRD negative"),
        Line2D([], [], marker="v", color="#ff7f0e", linestyle="none", label="MRD positive"),
    ]
    handles += [
        Line2D([], [], marker=m, color=c, linestyle="none", label=k.replace("_", " "))
        for k, (m, c) in EVENT_MARKERS.items()
    ]
    axis.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
    return figure


def kaplan_meier_plot(result: Survival, title: str, ci_bands: bool, image_format: ImageFormat) -> bytes:
    return render(kaplan_meier_figure(result, title, ci_bands), image_format)


def swimmer_plot(
    patients: Sequence[tuple[UUID, str]],
    treatments: Sequence[Any],
    outcomes: Sequence[Any],
    title: str,
    image_format: ImageFormat,
) -> bytes:
    return render(swimmer_figure(patients, treatments, outcomes, title), image_format)
