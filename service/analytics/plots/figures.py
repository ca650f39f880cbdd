"""Kaplan–Meier, cumulative-incidence, forest and swimmer plots, drawn with matplotlib's
non-interactive Agg backend, laid out as clinicians read them: the test's p on the figure, the
legend outside the curves, whole-number time ticks, a coloured number-at-risk table, and a
message instead of empty axes.

Figures are made with `Figure` directly, never through pyplot's global figure registry, so that
worker threads can draw at the same time (service.common.heavy)."""

import bisect
import io
import math
import textwrap
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any, Literal
from uuid import UUID

import matplotlib

matplotlib.use("Agg")
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Bbox

from service.analytics.plots.images import ImageFormat
from service.analytics.schemas import CumulativeIncidence, Survival

COLORS = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
LABEL_LENGTH = 40


DPI = 120


def render(figure: Figure, image_format: ImageFormat) -> bytes:
    buffer = io.BytesIO()
    # No creation date in the file: the same data gives the same bytes.
    metadata: dict[str, Any] = {"Date": None} if image_format == "svg" else {"Software": None}
    # SVG text stays text (<text> elements a journal's editor can change), not glyph paths; element
    # ids come from a fixed salt, so the same data gives the same bytes.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "leukemia-registry"}):
        crop = _content_box(figure) if image_format == "png" else "tight"
        figure.savefig(buffer, format=image_format, bbox_inches=crop, metadata=metadata, dpi=DPI)
    return buffer.getvalue()


def _content_box(figure: Figure) -> Bbox:
    """The box that bbox_inches="tight" crops a PNG to, measured on a renderer of one pixel.
    savefig's own measure lays the figure out on a renderer of the whole image and then draws on
    a second one while it still holds the first: a 200-lane swimmer plot is 1,200 x 8,568 pixels,
    41 MB each, and its drawing peaked at 74 MB over the worker's memory against 36 MB this way.
    Text is measured at the same resolution either way: the same box, the same bytes
    (tests/integration/test_plots.py)."""
    figure.set_dpi(DPI)
    box = figure.get_tightbbox(RendererAgg(1, 1, DPI))  # type: ignore[no-untyped-call]
    return box.padded(matplotlib.rcParams["savefig.pad_inches"])


def message_figure(title: str, message: str) -> Figure:
    """A figure that says why there is nothing to draw, instead of empty axes."""
    figure = Figure(figsize=(8, 2.5))
    axis = figure.subplots()
    axis.set_axis_off()
    axis.set_title(title)
    axis.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=11, transform=axis.transAxes)
    return figure


def _wrap(text: str, width: int = 70) -> str:
    return "\n".join(textwrap.wrap(text, width))


def format_p(p: float | None) -> str:
    if p is None:
        return "not computable"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _short(label: str) -> str:
    return label if len(label) <= LABEL_LENGTH else label[: LABEL_LENGTH - 1] + "…"


def _whole_number_ticks(axis: Axes) -> None:
    axis.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=8))
    axis.set_xlim(left=0)


def _legend_outside(axis: Axes, **kwargs: Any) -> None:
    axis.legend(
        loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8, frameon=False, borderaxespad=0, **kwargs
    )


def kaplan_meier_figure(result: Survival, title: str, ci_bands: bool) -> Figure:
    if all(group.not_computable for group in result.groups):
        withheld_reasons = sorted({str(g.not_computable) for g in result.groups})
        return message_figure(
            title, f"{result.endpoint} not computable:\n" + "\n".join(_wrap(r) for r in withheld_reasons)
        )
    if not any(group.n for group in result.groups):
        reasons = "; ".join(f"{n} {reason}" for reason, n in sorted(result.excluded_by_reason.items()))
        return message_figure(
            title,
            f"No patient is in the {result.endpoint} analysis set" + (f":\n{reasons}" if reasons else "."),
        )
    figure = Figure(figsize=(9, 5.5 + 0.25 * len(result.groups)))
    curve, table = figure.subplots(
        2, 1, gridspec_kw={"height_ratios": [4, 0.6 + 0.3 * len(result.groups)]}, sharex=True
    )
    for index, group in enumerate(result.groups):
        color = COLORS[index % len(COLORS)]
        if group.not_computable:
            # No curve for a withheld group: drawing the rest of its patients would hide an event.
            curve.plot(
                [], [], color=color, label=f"{_short(group.group.label)} (n={group.n}): not computable"
            )
            continue
        xs = [0.0] + [p.time for p in group.curve]
        ys = [1.0] + [p.survival for p in group.curve]
        excluded = sum(group.excluded.values())
        label = f"{_short(group.group.label)} (n={group.n}, events={group.events}" + (
            f", {excluded} excluded)" if excluded else ")"
        )
        if group.median.time is not None:
            label += f"\n  median {group.median.time:.3g} {result.time_unit}"
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
        # The undated-event rule withholds these groups' estimates: the plot says so, not just the JSON.
        names = ", ".join(g.group.label for g in withheld)
        title += f"\n{names}: not computable (a patient's event or origin has no study day)"
    if result.log_rank is not None:
        name = "Log-rank" if result.log_rank.rho == 0 else f"G-rho (rho = {result.log_rank.rho:g})"
        strata = f", stratified by {result.log_rank.stratified_by}" if result.log_rank.stratified_by else ""
        curve.text(
            1.02,
            0.0,
            f"{name}{strata}: {format_p(result.log_rank.p_value)}",
            transform=curve.transAxes,
            ha="left",
            va="bottom",
            fontsize=9,
            bbox={"facecolor": "white", "edgecolor": "#cccccc", "boxstyle": "round,pad=0.3"},
        )
    elif len(result.groups) >= 2:
        curve.text(
            1.02,
            0.0,
            "Log-rank: not computable\n" + _wrap(result.not_computable.get("log_rank", ""), 30),
            transform=curve.transAxes,
            ha="left",
            va="bottom",
            fontsize=9,
        )
    curve.set_ylim(-0.02, 1.02)
    curve.set_ylabel(f"{result.endpoint} probability")
    curve.set_title(title, fontsize=10 if withheld else None)
    curve.grid(alpha=0.3)
    _legend_outside(curve)
    _at_risk_table(table, result.groups, result.time_unit)
    # the ticks are the at-risk table's times (whole numbers)
    grid = [point.time for point in result.groups[0].at_risk]
    curve.set_xticks(grid)
    curve.set_xlim(
        left=0,
        right=max(grid[-1], max((p.time for g in result.groups for p in g.curve), default=0)) * 1.02 or 1,
    )
    return figure


def _events_text(events: int | dict[str, int] | None) -> str:
    if isinstance(events, dict):
        return "/".join(str(n) for n in events.values())
    return str(events)


def _at_risk_table(
    table: Axes, groups: Sequence[Any], time_unit: str, what: str = "cumulative events"
) -> None:
    table.set_xlabel(f"Time ({time_unit})")
    table.set_yticks(range(len(groups)))
    table.set_yticklabels([_short(g.group.label) for g in groups], fontsize=9)
    for index, label in enumerate(table.get_yticklabels()):
        label.set_color(COLORS[index % len(COLORS)])
    table.set_ylim(-0.6, len(groups) - 0.4)
    table.invert_yaxis()
    table.set_title(f"Number at risk ({what}, censored)", fontsize=9, loc="left")
    for index, group in enumerate(groups):
        for column, point in enumerate(group.at_risk):
            table.text(
                point.time,
                index,
                f"{point.n_risk} ({_events_text(point.events)}, {point.censored})",
                # the first column starts at its tick, clear of the group names left of the axis
                ha="left" if column == 0 else "center",
                va="center",
                fontsize=9,
                color=COLORS[index % len(COLORS)],
            )
    for spine in ("top", "right", "left"):
        table.spines[spine].set_visible(False)
    table.tick_params(axis="y", length=0, pad=14)


def cumulative_incidence_figure(result: CumulativeIncidence, title: str) -> Figure:
    if all(group.not_computable for group in result.groups):
        withheld_reasons = sorted({str(g.not_computable) for g in result.groups})
        return message_figure(title, "Not computable:\n" + "\n".join(_wrap(r) for r in withheld_reasons))
    if not any(group.n for group in result.groups):
        reasons = "; ".join(f"{n} {reason}" for reason, n in sorted(result.excluded_by_reason.items()))
        return message_figure(
            title,
            "No patient reached CR/CRi/CRh on a dated assessment" + (f":\n{reasons}" if reasons else "."),
        )
    figure = Figure(figsize=(9, 5.5 + 0.25 * len(result.groups)))
    axis, table = figure.subplots(
        2, 1, gridspec_kw={"height_ratios": [4, 0.6 + 0.3 * len(result.groups)]}, sharex=True
    )
    order = [c.cause for c in next(g for g in result.groups if not g.not_computable).causes]
    styles = {cause: ("-", "--")[i % 2] for i, cause in enumerate(order)}
    names = {cause: NAMES.get(cause, cause.replace("_", " ")) for cause in order}
    for index, group in enumerate(result.groups):
        color = COLORS[index % len(COLORS)]
        if group.not_computable:
            axis.plot([], [], color=color, label=f"{_short(group.group.label)}: not computable")
            continue
        for cause in group.causes:
            xs = [0.0] + [p.time for p in cause.curve]
            ys = [0.0] + [p.estimate for p in cause.curve]
            if group.censorings:
                # a "+" where patients were censored, on each cause's curve at that time
                marks = [(c.time, ys[bisect.bisect_right(xs, c.time) - 1]) for c in group.censorings]
                axis.plot(
                    *zip(*marks, strict=True),
                    linestyle="none",
                    marker="+",
                    markersize=9,
                    color=color,
                    gid=f"censor-marks-{index}-{cause.cause}",
                )
            if cause.curve:
                axis.step(
                    xs,
                    ys,
                    where="post",
                    color=color,
                    linestyle=styles[cause.cause],
                    label=f"{_short(group.group.label)}: {names[cause.cause]} ({cause.events} of {group.n})",
                )
            else:
                axis.plot(
                    [],
                    [],
                    color=color,
                    linestyle=styles[cause.cause],
                    label=f"{_short(group.group.label)}: {names[cause.cause]} (no events)",
                )
    if any(g.censorings for g in result.groups):
        axis.plot([], [], linestyle="none", marker="+", markersize=9, color="#444444", label="censored")
    lines = [f"Gray's test, {names[t.cause]}: {format_p(t.p_value)}" for t in result.gray_tests]
    withheld = [g.group.label for g in result.groups if g.not_computable]
    if withheld:
        lines.append(
            f"{', '.join(withheld)}: not computable (a patient's relapse, death or CR has no study day)"
        )
    if lines:
        axis.text(
            0.02,
            0.97,
            "\n".join(lines),
            transform=axis.transAxes,
            ha="left",
            va="top",
            fontsize=9,
            bbox={"facecolor": "white", "edgecolor": "#cccccc", "boxstyle": "round,pad=0.3"},
        )
    axis.set_ylim(-0.02, 1.02)
    axis.set_ylabel("Cumulative incidence")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    _legend_outside(axis)
    shown = [g for g in result.groups if not g.not_computable]
    # every group keeps its row and colour; a withheld group's row is empty, as its curve
    _at_risk_table(
        table, result.groups, result.time_unit, "cumulative " + "/".join(names[c] for c in order) + " events"
    )
    table.set_xlabel(f"Time from first CR/CRi/CRh ({result.time_unit})")
    grid = [point.time for point in shown[0].at_risk]
    axis.set_xticks(grid)
    axis.set_xlim(
        left=0,
        right=max(
            grid[-1] if grid else 0,
            max((p.time for g in shown for c in g.causes for p in c.curve), default=0),
        )
        * 1.02
        or 1,
    )
    return figure


NAMES = {"relapse": "relapse", "non_relapse_mortality": "non-relapse mortality", "gvhd": "GVHD"}


def forest_figure(result: Any) -> Figure:
    """One row per study (rate and interval, square sized by weight), the pooled random-effects
    diamond, and the prediction interval as a line through it."""
    rows = result.rows
    if not rows:
        return message_figure(f"Forest plot: {result.outcome}", "No study matches the selection.")
    pooled = result.pooled
    height = len(rows) + (3 if pooled else 0)
    # rows grow with the longest label (a title over several lines), so labels never overlap
    lines = max(len(textwrap.wrap(r.study_label, 48)) for r in rows)
    figure = Figure(figsize=(10, 1.6 + 0.38 * height * max(1.0, lines / 2.5)))
    axis = figure.subplots()

    def label(column: Literal["names", "figures"], y: float, text: str, **style: Any) -> None:
        """A row's text left of the axis (names) or right of it (figures), in row coordinates."""
        x, align = (-0.03, "right") if column == "names" else (1.03, "left")
        axis.text(
            x, y, text, ha=align, va="center", fontsize=8, transform=axis.get_yaxis_transform(), **style
        )

    def percent(value: float) -> str:
        return f"{100 * value:.0f}"

    # Square area by weight; under the GLMM (no weights) by the study's share of the patients.
    # Squares and intervals are not clipped at the axis (a 100 % rate sits on its edge).
    patients = sum(r.total for r in rows if r.not_pooled is None) or 1
    for y, row in enumerate(rows):
        pooled_row = row.not_pooled is None
        share = row.weight_percent / 100 if row.weight_percent is not None else row.total / patients
        color = "#1f4e79" if pooled_row else "#aaaaaa"
        if row.ci_lower is not None and row.ci_upper is not None:
            axis.plot([row.ci_lower, row.ci_upper], [y, y], color=color, linewidth=1.2, clip_on=False)
        if row.rate is not None:
            size = 4 + 14 * math.sqrt(share) if pooled_row else 5
            axis.plot(
                [row.rate],
                [y],
                marker="s",
                markersize=size,
                color=color,
                linestyle="none",
                clip_on=False,
                gid=f"study-square-{y}",
            )
        # the whole label (author, year; else the title over as many lines as it needs)
        label(
            "names",
            y,
            "\n".join(textwrap.wrap(row.study_label, 48)) + ("" if pooled_row else "  (not pooled)"),
            color="#000000" if pooled_row else "#777777",
        )
        rate = "—" if row.rate is None else f"{percent(row.rate)}%"
        interval = "" if row.ci_lower is None else f" [{percent(row.ci_lower)}, {percent(row.ci_upper)}]"
        weight = f"{row.weight_percent:.1f}%" if pooled_row and row.weight_percent is not None else "—"
        label("figures", y, f"{row.events}/{row.total}   {rate}{interval}   {weight}")
    label("figures", -1, "events/N   rate [CI]   weight", fontweight="bold")
    if pooled:
        y_pooled = len(rows) + 0.8
        estimate, prediction = pooled.random_effects, pooled.prediction_interval
        axis.add_patch(
            Polygon(
                [
                    (estimate.ci_lower, y_pooled),
                    (estimate.estimate, y_pooled - 0.35),
                    (estimate.ci_upper, y_pooled),
                    (estimate.estimate, y_pooled + 0.35),
                ],
                closed=True,
                color="#c00000",
            )
        )
        if prediction is not None:
            # the prediction interval: a line with end ticks, below the diamond
            for xs, ys in (
                ([prediction.ci_lower, prediction.ci_upper], [y_pooled + 0.8, y_pooled + 0.8]),
                ([prediction.ci_lower, prediction.ci_lower], [y_pooled + 0.6, y_pooled + 1.0]),
                ([prediction.ci_upper, prediction.ci_upper], [y_pooled + 0.6, y_pooled + 1.0]),
            ):
                axis.plot(xs, ys, color="#c00000", linewidth=1.5)
        method = {"DL": "DerSimonian–Laird", "REML": "REML", "PM": "Paule–Mandel"}[pooled.tau2_method]
        knha = ", Hartung–Knapp" if pooled.hartung_knapp else ""
        studies = f"{pooled.studies} stud{'y' if pooled.studies == 1 else 'ies'}"
        label("names", y_pooled, f"Random effects, {studies} ({method}{knha})", fontweight="bold")
        label(
            "names",
            y_pooled + 0.8,
            "Prediction interval"
            if prediction is not None
            else "Prediction interval: needs 3 or more studies",
        )
        label(
            "figures",
            y_pooled,
            f"{percent(estimate.estimate)}% [{percent(estimate.ci_lower)}, {percent(estimate.ci_upper)}]",
            fontweight="bold",
        )
        if prediction is not None:
            label(
                "figures", y_pooled + 0.8, f"[{percent(prediction.ci_lower)}, {percent(prediction.ci_upper)}]"
            )
        heterogeneity = f"I² = {100 * pooled.i2:.0f}%, tau² = {pooled.tau2:.3g}" + (
            f", heterogeneity {format_p(pooled.p_heterogeneity)}"
            if pooled.p_heterogeneity is not None
            else ""
        )
        axis.set_xlabel(f"Proportion ({result.outcome})\n{heterogeneity}")
    else:
        reason = f"\nNo pooled estimate: {result.not_computable}" if result.not_computable else ""
        axis.set_xlabel(f"Proportion ({result.outcome}){_wrap(reason, 110)}")
    axis.set_xlim(0, 1)
    axis.set_ylim(height - 0.3, -1.5)
    axis.set_yticks([])
    for spine in ("left", "right", "top"):
        axis.spines[spine].set_visible(False)
    axis.grid(axis="x", alpha=0.3)
    axis.set_title("Forest plot", loc="left")
    return figure


RESPONSE_MARKERS = {
    "CR": ("o", "#2ca02c"),
    "CRi": ("o", "#98df8a"),
    "CRh": ("o", "#bcbd22"),
    "MLFS": ("s", "#17becf"),
    "PR": ("s", "#ffbb78"),
    "SD": ("s", "#636363"),  # darker than the follow-up lane it sits on
    "NR": ("x", "#d62728"),
    "PD": ("x", "#8c564b"),
}
EVENT_MARKERS = {
    "hsct": ("*", "#9467bd"),
    "relapse": ("D", "#d62728"),
    "progression": ("D", "#8c564b"),
    "gvhd": ("P", "#e377c2"),
    "death": ("X", "#000000"),
}
EVENT_LABELS = {
    "hsct": "HSCT",
    "relapse": "relapse",
    "progression": "progression",
    "gvhd": "GVHD",
    "death": "death",
}
MRD_MARKERS = {"negative": ("^", "#1f77b4"), "positive": ("v", "#ff7f0e")}
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
FOLLOW_UP_COLOR = "#d9d9d9"


def swimmer_figure(
    patients: Sequence[tuple[UUID, str, str, int | None]],
    treatments: Sequence[Any],
    outcomes: Sequence[Any],
    title: str,
) -> Figure:
    """`patients`: (id, subject code, arm label, last recorded day), arm by arm. Outcomes without a
    study day are drawn hollow in a column of their own ("day not known"), never on the time axis."""
    if not patients:
        return message_figure(title, "The study has no patients on this page.")
    lanes = {pid: i for i, (pid, _, _, _) in enumerate(patients)}
    undated = [row for row in outcomes if row.patient_id in lanes and row.study_day is None and _symbol(row)]
    figure = Figure(figsize=(10.8 if undated else 10, 1.4 + 0.35 * len(patients)))
    if undated:
        axis, side = figure.subplots(
            1, 2, sharey=True, gridspec_kw={"width_ratios": [14, 1.4], "wspace": 0.04}
        )
    else:
        axis, side = figure.subplots(), None
    used: dict[str, Line2D] = {}

    def use(key: str, handle: Line2D) -> None:
        used.setdefault(key, handle)

    dead = {row.patient_id for row in outcomes if row.kind == "event" and row.event_type == "death"}
    # An event without a day (relapse, death, …) may lie after the last recorded day: such a lane
    # does not end in the "alive" arrow.
    open_ended = {row.patient_id for row in undated if row.kind == "event"}
    # Follow-up lane: day 1 to the end of the last recorded day (a day is the cell [d, d + 1), as
    # the treatment bars); an arrow just past it when the patient is alive there.
    last_days = [last for _, _, _, last in patients if last is not None]
    gap = 0.015 * (max(last_days, default=1) + 1)  # the arrow clears a marker on the last day
    alive: list[tuple[float, int]] = []
    for pid, _, _, last in patients:
        if last is None:
            continue
        axis.plot(
            [1, last + 1],
            [lanes[pid], lanes[pid]],
            color=FOLLOW_UP_COLOR,
            linewidth=7,
            solid_capstyle="butt",
            zorder=0,
        )
        use("follow-up", Line2D([], [], color=FOLLOW_UP_COLOR, linewidth=6, label="follow-up"))
        if pid not in dead and pid not in open_ended:
            alive.append((last + 1 + gap, lanes[pid]))
    if alive:
        xs, ys = zip(*alive, strict=True)
        axis.plot(xs, ys, marker=">", color="#555555", linestyle="none", markersize=8, zorder=3, gid="alive")
        use(
            "alive",
            Line2D([], [], marker=">", color="#555555", linestyle="none", label="alive at last recorded day"),
        )
    # One draw call per phase and per marker style, whatever the number of records.
    bars: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for row in treatments:
        if row.patient_id not in lanes or row.start_day is None:
            continue
        end = row.end_day if row.end_day is not None else row.start_day
        bars[row.phase].append((lanes[row.patient_id], max(end - row.start_day, 0) + 1, row.start_day))
    for phase, items in bars.items():
        ys_, widths, lefts = zip(*items, strict=True)
        color = PHASE_COLORS.get(phase, "#cccccc")
        axis.barh(ys_, widths, left=lefts, height=0.45, color=color, edgecolor="none", alpha=0.85, zorder=1)
        use(f"phase:{phase}", Line2D([], [], color=color, linewidth=6, label=phase.replace("_", " ")))
    points: dict[tuple[str, str, int], list[tuple[float, float]]] = defaultdict(list)
    hollow: dict[tuple[str, str, int], list[tuple[float, float]]] = defaultdict(list)
    slots: dict[UUID, int] = defaultdict(int)  # undated marks side by side in a lane
    for row in outcomes:
        if row.patient_id not in lanes:
            continue
        y = lanes[row.patient_id]
        marks = list(_marks(row))
        for (symbol, color, size, dy), key, label in marks:
            use(key, Line2D([], [], linestyle="none", label=label, **_marker_style(symbol, color)))
            if row.study_day is None:  # a record's marks share its slot (a response and its MRD)
                hollow[(symbol, color, size)].append((slots[row.patient_id], y + dy))
            else:
                points[(symbol, color, size)].append((row.study_day, y + dy))
        if row.study_day is None and marks:
            slots[row.patient_id] += 1
    for (symbol, color, size), xy in points.items():
        xs_, ys_ = zip(*xy, strict=True)
        axis.plot(xs_, ys_, linestyle="none", markersize=size, zorder=4, **_marker_style(symbol, color))
    if side is not None:
        for (symbol, color, size), xy in hollow.items():
            xs_, ys_ = zip(*xy, strict=True)
            side.plot(
                xs_,
                ys_,
                linestyle="none",
                markersize=size,
                zorder=4,
                gid=f"undated-{symbol}-{color.lstrip('#')}",
                **{**_marker_style(symbol, color), "markerfacecolor": "white"},
            )
        side.set_xlim(-0.7, max(slots.values()) - 0.3)
        side.set_xticks([])
        side.set_title("day not\nknown", fontsize=8)
        for spine in ("top", "right"):
            side.spines[spine].set_visible(False)
        use(
            "undated",
            Line2D(
                [], [], marker="o", markerfacecolor="white", color="#555555", linestyle="none",
                label="hollow: recorded without a day",
            ),
        )  # fmt: skip
    axis.set_yticks(range(len(patients)))
    axis.set_yticklabels([code for _, code, _, _ in patients], fontsize=8)
    # Arms: a separator and the arm's name beside its lanes.
    named = side if side is not None else axis
    start = 0
    for index in range(1, len(patients) + 1):
        if index == len(patients) or patients[index][2] != patients[start][2]:
            if index < len(patients):
                axis.axhline(index - 0.5, color="#666666", linewidth=0.8)
                if side is not None:
                    side.axhline(index - 0.5, color="#666666", linewidth=0.8)
            named.text(
                1.04 if side is not None else 1.01,
                (start + index - 1) / 2,
                patients[start][2],
                transform=named.get_yaxis_transform(),
                rotation=0,
                va="center",
                ha="left",
                fontsize=8,
                fontweight="bold",
            )
            start = index
    axis.set_ylim(len(patients) - 0.5, -0.5)
    axis.axvline(1, color="#999999", linewidth=0.8, linestyle="--")
    axis.set_xlabel("Study day (day 1 = first day of study treatment)")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=10))
    axis.set_title(title)
    axis.grid(axis="x", alpha=0.3)
    # Only the symbols this page uses.
    axis.legend(
        handles=list(used.values()),
        loc="upper center",
        # just below the x label: about 0.6 inch, as a fraction of the axes' height
        bbox_to_anchor=(0.5, -0.6 / (0.77 * (1.4 + 0.35 * len(patients)))),
        ncol=5,
        fontsize=8,
        frameon=False,
    )
    return figure


def _symbol(row: Any) -> bool:
    """Whether an outcome is drawn at all (a response category, an MRD status, a known event)."""
    return bool(list(_marks(row)))


def _marks(row: Any) -> Iterator[tuple[tuple[str, str, int, float], str, str]]:
    """Each mark an outcome draws: (symbol, colour, size, lane offset), legend key and label."""
    if row.kind == "response":
        name = row.category or ("/".join(row.possible_categories) if row.possible_categories else None)
        marker = RESPONSE_MARKERS.get(row.category or (row.possible_categories or [""])[0] or "")
        if name and marker:
            yield (marker[0], marker[1], 7, 0.0), f"response:{name}", name
        if row.mrd_status in MRD_MARKERS:
            symbol, color = MRD_MARKERS[row.mrd_status]
            yield (symbol, color, 5, 0.3), f"mrd:{row.mrd_status}", f"MRD {row.mrd_status}"
    elif row.kind == "event" and row.event_type in EVENT_MARKERS:
        symbol, color = EVENT_MARKERS[row.event_type]
        yield (symbol, color, 9, 0.0), f"event:{row.event_type}", EVENT_LABELS[row.event_type]


def _marker_style(symbol: str, color: str) -> dict[str, Any]:
    """Filled symbols get a dark outline, so that a light one stays visible on the grey lane."""
    if symbol in ("x", "+"):
        return {"marker": symbol, "color": color, "markeredgewidth": 2}
    return {"marker": symbol, "color": color, "markeredgecolor": "#222222", "markeredgewidth": 0.6}
