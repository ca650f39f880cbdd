"""Phase 2 design calculations (no study data): Simon's two-stage designs as a response body."""

from service.analytics.exact import TwoStageDesign, simon_two_stage
from service.analytics.schemas import SimonTwoStage, TwoStageDesignResult


def _result(design: TwoStageDesign | None) -> TwoStageDesignResult | None:
    if design is None:
        return None
    return TwoStageDesignResult(
        r1=design.r1,
        n1=design.n1,
        r=design.r,
        n=design.n,
        expected_n_p0=design.expected_n0,
        early_stop_p0=design.early_stop0,
        alpha=design.alpha,
        power=design.power,
    )


def simon_designs(p0: float, p1: float, alpha: float, beta: float, n_max: int) -> SimonTwoStage:
    optimal, minimax = simon_two_stage(p0, p1, alpha, beta, n_max)
    return SimonTwoStage(
        p0=p0,
        p1=p1,
        alpha=alpha,
        beta=beta,
        n_max=n_max,
        optimal=_result(optimal),
        minimax=_result(minimax),
        method={
            "search": "every (n1, n, r1) with n <= n_max; for each the smallest r keeping the type I error <= alpha, kept when the power at p1 is >= 1 - beta",
            "optimal": "smallest expected sample size under p0",
            "minimax": "smallest n, ties broken by the expected sample size under p0",
            "reference": "Simon R. Optimal two-stage designs for phase II clinical trials. Control Clin Trials 1989;10:1-10",
        },
        warnings=[]
        if optimal
        else [f"no design with at most {n_max} patients meets alpha = {alpha:g} and power = {1 - beta:g}"],
    )
