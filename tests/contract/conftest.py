"""Schemathesis builds each operation's coverage-phase cases (one per boundary or forbidden value,
~21,000 for this contract) when it collects the test, and every xdist worker collects every test
while it runs only its share: each worker paid for all of them, some 37 s of CPU at its start.
Here an operation's cases are built when its test is about to run, on the same test object and in
the same order, by schemathesis' own function. That works because Hypothesis reads a test's
explicit examples when the test runs, not when it is decorated (`hypothesis.core`, 6.x), and the
mark schemathesis sets beside them is read after the test has run (its `pytest_pyfunc_call`)."""

from collections.abc import Callable
from typing import Any

import pytest
from schemathesis.generation.hypothesis import builder

build_coverage = builder.add_coverage
DEFERRED = "_contract_deferred_coverage"


def defer_coverage(test: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
    setattr(test, DEFERRED, (args, kwargs))
    return test


# create_test looks the name up in its module when it builds each operation's test.
builder.add_coverage = defer_coverage


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    if not isinstance(item, pytest.Function):
        return
    test = item.obj
    deferred = getattr(test, DEFERRED, None)
    if deferred is not None:
        delattr(test, DEFERRED)
        args, kwargs = deferred
        build_coverage(test, *args, **kwargs)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """pytest 9 builds an item's id from its original name and parametrization only, so every
    operation's item of the schema's test had the same id (`test_operation_conforms`): reports,
    --durations and -k by id could not tell them apart. Each gets its operation in its id again."""
    for item in items:
        label = getattr(item, "operation_label", None)
        if isinstance(item, pytest.Function) and label and item.parent is not None and "[" not in item.nodeid:
            item._id = item.parent.id.child(item.originalname).with_params(label)
