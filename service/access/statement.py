"""Every analysis says which data it was computed on: the `Analysis-Scope` response header of
the statistics, evidence and reconciliation routes. `all` for a global role; otherwise each
granted study with the sites its patients came from (`all` for the whole study), e.g.
`0190…=all; 0191…=sites:0192…,0193…`."""

from typing import Any

from litestar import Response
from litestar.datastructures import ResponseHeader

from service.access.disclosure import withhold
from service.access.scope import current_scope
from service.errors import Forbidden

HEADER = "Analysis-Scope"
DOCUMENTED = ResponseHeader(
    name=HEADER,
    description="The data the answer was computed on: `all`, or each granted study with `all` or the "
    "sites whose patients it includes (`<study id>=sites:<site id>,…`), separated by `; `.",
    documentation_only=True,
)


def describe() -> str:
    scope = current_scope()
    if scope.everything:
        return "all"
    parts = []
    analysed = scope.sites(scope.purpose)
    for study in sorted(scope.studies, key=str):
        sites = analysed.get(study, frozenset())
        parts.append(
            f"{study}=all" if sites is None else f"{study}=sites:{','.join(sorted(map(str, sites)))}"
        )
    return "; ".join(parts)


async def state_scope(response: Response[Any]) -> Response[Any]:
    """after_request hook of every analysis: the header, and small counts withheld where the
    identity may not see the patients behind them (service.access.disclosure)."""
    scope = current_scope()
    response.headers[HEADER] = describe()
    if (response.status_code or 200) < 300 and scope.withholds_counts():
        if isinstance(response.content, bytes):
            # A figure draws each event's step and each patient's lane: not one to withhold from.
            raise Forbidden(
                "Figures are not drawn for an aggregate grant: they show every event. The analysis itself "
                f"is available, with counts below {scope.min_count} withheld."
            )
        if hasattr(response.content, "disclosure"):
            response.content = withhold(response.content, scope.min_count)
    return response
