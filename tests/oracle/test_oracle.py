"""The generative oracle: messy studies entered through the API, every time-to-event and response
endpoint checked against a reference derivation written apart from service/analytics
(tests/oracle/reference.py) and against lifelines and statsmodels on the reference rows.

Properties, for every generated study and endpoint:
- no 500; every estimate reported not computable says why;
- conservation: every patient is analysed or excluded with a named reason, and counts add up;
- no patient with an undated qualifying event (or origin) is censored or silently left out:
  by default their group's estimates are withheld, on request they are excluded and named;
- patients without an arm are never a group when comparing arms;
- the analysis rows equal the reference's, and the estimates equal lifelines' Kaplan–Meier,
  log-rank and Cox (Efron) on them; cumulative incidences of relapse and of death without
  relapse add up to one minus the Kaplan–Meier of either; response counts and Wilson intervals
  equal statsmodels'.

`make test` runs a modest number of examples with a fixed seed; `make oracle` runs many
(ORACLE_EXAMPLES, ORACLE_SEED unset = random)."""

import os
import warnings
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test
from litestar.testing import TestClient
from statsmodels.stats.proportion import proportion_confint

from tests.oracle import firth_reference, reference
from tests.oracle.load import API, load_study
from tests.oracle.studies import StudySpec, studies

EXAMPLES = int(os.environ.get("ORACLE_EXAMPLES", "12"))
SEED = os.environ.get("ORACLE_SEED", "20261203")
ENDPOINTS = ("OS", "RFS", "EFS", "GRFS", "CRD")

# The service's exclusion texts, recognised by what they say (the reference names them apart).
REASONS = {
    "never reached": reference.NEVER_IN_REMISSION,
    "death recorded before": reference.DEATH_BEFORE_DAY_1,
    "event of the endpoint has no study day": reference.UNDATED_EVENT,
    "only on assessments without a study day": reference.UNDATED_ORIGIN,
    "no record with a study day": reference.NO_DAY,
    "no record on or after": reference.NOTHING_AFTER_ORIGIN,
    "no response assessment": reference.NOT_ASSESSED,
    "no arm": "no_arm",
}


def _reason(text: str) -> str:
    [key] = [v for k, v in REASONS.items() if k in text]
    return key


def _get(client: TestClient[Any], path: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"{API}/{path}", params=params)
    assert response.status_code == 200, (path, params, response.status_code, response.text[:500])
    body: dict[str, Any] = response.json()
    return body


def _settings() -> Any:
    chosen = settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
        database=None,
    )
    return chosen


def _seeded(test: Any) -> Any:
    return seed(int(SEED))(test) if SEED else test


@_seeded
@_settings()
@given(
    spec=studies(),
    endpoint=st.sampled_from(ENDPOINTS),
    by_arm=st.booleans(),
    rule=st.sampled_from(("withhold", "exclude")),
)
def test_every_time_to_event_method_obeys_the_estimand_rules(
    client: TestClient[Any], spec: StudySpec, endpoint: str, by_arm: bool, rule: str
) -> None:
    study_id, arm_ids = load_study(client, spec)
    expected = [reference.row(p, endpoint) for p in spec.patients]
    grouped = by_arm and bool(arm_ids)
    params: dict[str, Any] = {"endpoint": endpoint, "undated_events": rule}
    if grouped:
        params["group_by"] = "arm"
    key = {i: arm for i, arm in enumerate(arm_ids)}

    def group_of(r: reference.Row) -> str | None:
        if not grouped:
            return "all"
        return key[r.arm] if r.arm is not None else None

    # the analysis rows
    rows = _get(client, f"studies/{study_id}/time-to-event", **params)
    got_rows = {
        (r["subject_code"], r["origin_day"], r["end_day"], r["event"], r["time"]) for r in rows["rows"]
    }
    want_rows = {
        (r.code, r.origin, r.end, r.event, float(r.time))
        for r in expected
        if r.reason is None and group_of(r) is not None
    }
    assert got_rows == want_rows
    events = {r["subject_code"]: r["event_or_censoring"] for r in rows["rows"] if r["event"]}
    assert events == {r.code: r.event_type for r in expected if r.event and group_of(r) is not None}
    got_excluded = {(e["subject_code"], _reason(e["reason"])) for e in rows["excluded"]}
    want_excluded = {(r.code, r.reason) for r in expected if r.reason is not None and group_of(r) is not None}
    want_excluded |= {(r.code, "no_arm") for r in expected if group_of(r) is None}
    assert got_excluded == want_excluded
    assert len(rows["rows"]) + len(rows["excluded"]) == len(spec.patients)  # conservation

    undated = [r for r in expected if r.reason in reference.UNDATED and group_of(r) is not None]
    survival = _get(client, f"studies/{study_id}/survival", **params, tau=60)
    _check_undated_block(survival, undated, rule)
    _check_survival(survival, expected, group_of, rule)
    if endpoint == "RFS":
        incidence = _get(
            client,
            f"studies/{study_id}/cumulative-incidence",
            undated_events=rule,
            **({"group_by": "arm"} if grouped else {}),
        )
        _check_undated_block(incidence, undated, rule)
        _check_incidence(incidence, expected, group_of, rule)
    if len(arm_ids) >= 2:
        cox = _get(
            client, f"studies/{study_id}/cox", covariates="arm", endpoint=endpoint, undated_events=rule
        )
        _check_cox(cox, expected, arm_ids, rule)
        firth = _get(
            client,
            f"studies/{study_id}/cox",
            covariates="arm",
            endpoint=endpoint,
            undated_events=rule,
            firth="always",
        )
        _check_firth(firth, expected, rule)
    rates = _get(client, f"studies/{study_id}/response-rates", **({"group_by": "arm"} if grouped else {}))
    _check_rates(rates, spec, group_of)
    _check_other_groupings_and_models(client, study_id, spec, expected, endpoint, rule, len(arm_ids))


def _check_other_groupings_and_models(
    client: TestClient[Any],
    study_id: str,
    spec: StudySpec,
    expected: list[reference.Row],
    endpoint: str,
    rule: str,
    arms: int,
) -> None:
    """The same rules in the groupings by patient attribute and in the models added beside Cox:
    every patient analysed or excluded with a reason, a missing value never a group, and the
    undated rule applied to exactly the undated patients the analysis could include."""
    aged = [(r, p.age) for r, p in zip(expected, spec.patients, strict=True)]
    banded = _get(
        client,
        f"studies/{study_id}/survival",
        endpoint=endpoint,
        undated_events=rule,
        group_by="age",
        age_cuts="40,60",
    )
    assert [g["group"]["key"] for g in banded["groups"]] == ["age<40", "40<=age<60", "age>=60"]
    no_age = "no age recorded: left out of the comparison by age"
    assert banded["excluded_by_reason"].get(no_age, 0) == sum(1 for _, age in aged if age is None)
    assert sum(g["n"] for g in banded["groups"]) + banded["excluded"] == len(spec.patients)
    band_of = {"age<40": lambda a: a < 40, "40<=age<60": lambda a: 40 <= a < 60, "age>=60": lambda a: a >= 60}
    for group in banded["groups"]:
        members = [r for r, age in aged if age is not None and band_of[group["group"]["key"]](age)]
        held = [r for r in members if r.reason in reference.UNDATED]
        assert (group["not_computable"] is not None) == bool(held and rule == "withhold"), group["group"][
            "key"
        ]
    assert banded["undated_events"]["patients"] == sum(
        1 for r, age in aged if age is not None and r.reason in reference.UNDATED
    )

    undated = [r for r in expected if r.reason in reference.UNDATED]
    transplant = _get(client, f"studies/{study_id}/transplant", endpoint=endpoint, undated_events=rule)
    assert transplant["n"] + transplant["excluded"] == len(spec.patients)  # conservation
    assert transplant["undated_events"]["patients"] == len(undated)
    if undated and rule == "withhold":
        assert transplant["terms"] == [] and "undated" in transplant["not_computable"]
    if not transplant["terms"]:
        assert transplant["not_computable"]  # never an empty model without the reason

    if endpoint == "RFS" and arms >= 2:
        model = _get(
            client, f"studies/{study_id}/competing-risks-model", covariates="arm", undated_events=rule
        )
        assert model["n"] + model["excluded"] == len(spec.patients)
        with_arm = [r for r in undated if r.arm is not None]
        if with_arm and rule == "withhold":
            assert model["fine_gray"] == [] and "undated" in model["not_computable"]
        if not model["fine_gray"]:
            assert model["not_computable"]


def _check_undated_block(body: dict[str, Any], undated: list[reference.Row], rule: str) -> None:
    block = body["undated_events"]
    assert block["rule"] == rule and block["patients"] == len(undated)
    assert block["subject_codes"] == [r.code for r in undated]
    if undated and rule == "exclude":
        assert any("can bias" in w for w in body["warnings"])


def _members(
    expected: list[reference.Row], group_of: Any, key: str, rule: str
) -> tuple[list[reference.Row], int]:
    """The group's analysed rows and its undated patients."""
    mine = [r for r in expected if group_of(r) == key]
    return [r for r in mine if r.reason is None], sum(1 for r in mine if r.reason in reference.UNDATED)


def _check_survival(body: dict[str, Any], expected: list[reference.Row], group_of: Any, rule: str) -> None:
    total = sum(g["n"] + sum(g["excluded"].values()) for g in body["groups"])
    assert total + body["excluded_by_reason"].get(_text(body, "no_arm"), 0) == len(expected)
    samples = []
    for group in body["groups"]:
        analysed, undated = _members(expected, group_of, group["group"]["key"], rule)
        assert group["n"] == len(analysed)
        if undated and rule == "withhold":
            assert group["not_computable"] and group["curve"] == [] and group["events"] is None
            assert group["median"]["time"] is None and group["rmst"] is None
            samples.append(None)
            continue
        assert group["not_computable"] is None
        assert group["events"] == sum(r.event for r in analysed)
        samples.append(analysed)
        if not analysed:
            assert group["curve"] == []
            continue
        km = KaplanMeierFitter().fit([r.time for r in analysed], [r.event for r in analysed])
        times = [p["time"] for p in group["curve"]]
        np.testing.assert_allclose(
            [p["survival"] for p in group["curve"]],
            km.survival_function_.loc[times, "KM_estimate"].to_numpy(),
            atol=1e-12,
        )
        assert [p["n_risk"] for p in group["curve"]] == km.event_table.loc[times, "at_risk"].tolist()
    if len(body["groups"]) < 2:
        return
    if body["log_rank"] is None:
        assert body["not_computable"].get("log_rank")  # with the reason
        return
    assert all(s is not None for s in samples)  # never a test over a withheld group
    present = [(i, s) for i, s in enumerate(samples) if s]
    durations = [r.time for _, s in present for r in s]
    groups = [i for i, s in present for _ in s]
    observed = [r.event for _, s in present for r in s]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test = multivariate_logrank_test(durations, groups, observed)
    assert body["log_rank"]["chi_square"] == pytest.approx(test.test_statistic, rel=1e-7, abs=1e-9)
    # Degrees of freedom as R's survdiff counts them: the groups with an expected number of events
    # above zero, i.e. with someone at risk at some event time (lifelines counts every group, so
    # it says 2 where R says 1 for three arms whose third lost its patients before the first event).
    event_times = {r.time for _, s in present for r in s if r.event}
    at_risk = [i for i, s in present if any(r.time >= t for r in s for t in event_times)]
    assert body["log_rank"]["df"] == len(at_risk) - 1


def _text(body: dict[str, Any], key: str) -> str:
    """The service's text of an exclusion reason in this response ('' when absent)."""
    return next((text for text in body["excluded_by_reason"] if _reason(text) == key), "")


def _check_incidence(body: dict[str, Any], expected: list[reference.Row], group_of: Any, rule: str) -> None:
    total = sum(g["n"] + sum(g["excluded"].values()) for g in body["groups"])
    assert total + body["excluded_by_reason"].get(_text(body, "no_arm"), 0) == len(expected)
    for group in body["groups"]:
        analysed, undated = _members(expected, group_of, group["group"]["key"], rule)
        assert group["n"] == len(analysed)
        if undated and rule == "withhold":
            assert group["not_computable"] and all(c["curve"] == [] for c in group["causes"])
            continue
        relapse, death = group["causes"]
        assert relapse["events"] == sum(r.event and r.event_type != "death" for r in analysed)
        assert death["events"] == sum(r.event and r.event_type == "death" for r in analysed)
        if not analysed or not (relapse["curve"] or death["curve"]):
            continue
        # Aalen–Johansen: the two incidences add up to 1 − Kaplan–Meier of the first event
        km = KaplanMeierFitter().fit([r.time for r in analysed], [r.event for r in analysed])
        for point in relapse["curve"] + death["curve"]:
            t = point["time"]
            total_incidence = _step(relapse["curve"], t) + _step(death["curve"], t)
            assert total_incidence == pytest.approx(1 - km.survival_function_at_times(t).iloc[0], abs=1e-10)
    if len(body["groups"]) >= 2 and not body["gray_tests"]:
        assert body["not_computable"]  # no test without the reason


def _step(curve: list[dict[str, Any]], t: float) -> float:
    before = [p["estimate"] for p in curve if p["time"] <= t]
    return before[-1] if before else 0.0


def _check_cox(body: dict[str, Any], expected: list[reference.Row], arm_ids: list[str], rule: str) -> None:
    with_arm = [r for r in expected if r.arm is not None]
    undated = [r for r in with_arm if r.reason in reference.UNDATED]
    if undated and rule == "withhold":
        assert body["terms"] == [] and "undated" in body["not_computable"]
        return
    if not body["terms"]:
        assert body["not_computable"]  # never an empty model without the reason
        return
    analysed = [r for r in with_arm if r.reason is None]
    present = sorted({r.arm for r in analysed if r.arm is not None})
    assert body["n"] == len(analysed) and len(body["terms"]) == len(present) - 1
    frame = pd.DataFrame(
        {
            "T": [float(r.time) for r in analysed],
            "E": [int(r.event) for r in analysed],
            **{f"arm{a}": [float(r.arm == a) for r in analysed] for a in present[1:]},
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            fitted = CoxPHFitter().fit(frame, "T", "E", fit_options={"precision": 1e-12, "max_steps": 500})
        except Exception:  # lifelines refuses what the service fitted (e.g. its convergence check)
            return
    # lifelines stops once its Newton steps are small, sometimes 1e-6 short of the maximum on a
    # flat likelihood (found by this oracle): the service's maximum is at least as high, and the
    # coefficients agree to lifelines' precision.
    ours = [t["coef"] for t in body["terms"]]
    assert ours == pytest.approx(fitted.params_.to_numpy().tolist(), abs=1e-4, rel=1e-4)
    tests = {t["test"]: t["chi_square"] for t in body["tests"]}
    assert tests["likelihood_ratio"] >= fitted.log_likelihood_ratio_test().test_statistic - 1e-8


def _check_firth(body: dict[str, Any], expected: list[reference.Row], rule: str) -> None:
    """Firth's fit follows the same rows and rules as the Cox model, and its estimate is the
    maximum the independent reference finds (finite even where the likelihood is monotone)."""
    with_arm = [r for r in expected if r.arm is not None]
    if rule == "withhold" and any(r.reason in reference.UNDATED for r in with_arm):
        assert body["terms"] == [] and "undated" in body["not_computable"]
        return
    if not body["terms"]:
        assert body["not_computable"]  # e.g. no events, one arm: never empty without the reason
        return
    analysed = [r for r in with_arm if r.reason is None]
    present = sorted({r.arm for r in analysed if r.arm is not None})
    assert body["n"] == len(analysed) and body["events"] == sum(r.event for r in analysed)
    x = np.array([[float(r.arm == a) for a in present[1:]] for r in analysed])
    times = np.array([float(r.time) for r in analysed])
    events = np.array([bool(r.event) for r in analysed])
    estimate = firth_reference.firth_cox(times, events, x - x.mean(axis=0))
    ours = np.array([t["coef"] for t in body["terms"]])
    # The service's maximum is at least as high as the general-purpose optimiser's.
    centred = x - x.mean(axis=0)
    assert (
        firth_reference.penalised_loglik(ours, times, events, centred)
        >= firth_reference.penalised_loglik(estimate, times, events, centred) - 1e-9
    )
    assert ours == pytest.approx(estimate, abs=1e-4, rel=1e-4)


def _check_rates(body: dict[str, Any], spec: StudySpec, group_of: Any) -> None:
    by_group: dict[str, list[tuple[bool, bool]]] = {}
    for p in spec.patients:
        key = group_of(reference.Row(p.code, p.arm))
        if key is not None:
            by_group.setdefault(key, []).append(reference.responders(p))
    counted = Counter(group_of(reference.Row(p.code, p.arm)) is None for p in spec.patients)
    assert sum(g["patients"] for g in body["groups"]) == counted[False]
    assert sum(body["excluded_by_reason"].values()) == counted[True]
    for group in body["groups"]:
        members = by_group.get(group["group"]["key"], [])
        x = sum(responder for _, responder in members)
        assert (group["patients"], group["evaluable"], group["responders"]) == (
            len(members),
            sum(evaluable for evaluable, _ in members),
            x,
        )
        if members:
            low, high = proportion_confint(x, len(members), method="wilson")
            assert [group["ci"]["lower"], group["ci"]["upper"]] == pytest.approx([low, high], abs=1e-12)


def test_the_reference_is_written_apart_from_the_service() -> None:
    """The oracle's derivation and generators import nothing of the service: a rule copied from
    service/analytics would agree with itself however wrong it was."""
    import ast
    from pathlib import Path

    for name in ("reference.py", "studies.py", "firth_reference.py"):
        tree = ast.parse((Path(__file__).parent / name).read_text())
        imported = [
            n.module if isinstance(n, ast.ImportFrom) else a.name
            for n in ast.walk(tree)
            if isinstance(n, ast.Import | ast.ImportFrom)
            for a in n.names
        ]
        assert not [m for m in imported if m and m.startswith("service")], name
