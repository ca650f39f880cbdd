"""The server process starts without scipy and matplotlib: the statistics and the plots load them
in the worker processes that run them (service.analytics.lazy_scipy, service.analytics.plots.images)."""

import math
import subprocess
import sys

from service.analytics import lazy_scipy


def test_the_app_module_imports_neither_scipy_nor_matplotlib() -> None:
    probe = "import sys, service.app; print(sorted(m for m in ('scipy', 'matplotlib') if m in sys.modules))"
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)  # noqa: S603
    assert shown.stdout.strip() == "[]"


def test_a_scipy_module_answers_as_the_real_one_on_first_use() -> None:
    from scipy import special, stats

    assert lazy_scipy.stats.norm is stats.norm
    assert lazy_scipy.special.gammaln is special.gammaln
    assert abs(lazy_scipy.special.gammaln(5.0) - math.log(24)) < 1e-14
