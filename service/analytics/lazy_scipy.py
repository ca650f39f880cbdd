"""scipy's modules, imported when first used rather than when the server process starts.

The statistics run in worker processes (service.common.heavy), and the server process that only
hands them over rarely calls scipy itself; importing scipy.stats at start cost every server process
(and every test that starts one) 1.3 s and tens of megabytes. What does call it in the server
process (reconciliation's normal quantiles and p-values) pays the import once, on its first request.
A module's attribute is looked up through importlib on first use, which holds the module's import
lock, so two threads that get there together both see the finished module
(importlib.util.LazyLoader is not thread-safe on 3.11)."""

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any


class _OnFirstUse:
    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)


if TYPE_CHECKING:
    from scipy import optimize, special, stats
else:
    optimize = _OnFirstUse("scipy.optimize")
    special = _OnFirstUse("scipy.special")
    stats = _OnFirstUse("scipy.stats")

__all__ = ["optimize", "special", "stats"]
