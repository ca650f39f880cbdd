"""Which pages share a statement (service.db.page_statements): plain `column <op> value` filters
over columns and plain orderings do, with their values as parameters; anything else is built
afresh; and the shapes kept are bounded."""

from unittest import mock

from sqlalchemy import column, table

from service.db import page_statements
from service.db.models import Patient
from service.db.page_statements import PageStatements

PATIENTS = Patient.__table__  # type: ignore[attr-defined]


def test_only_plain_comparisons_share_a_statement_and_the_shapes_are_bounded() -> None:
    other_table = table("t", column("a"))
    a, b = PATIENTS.c.diagnosis, PATIENTS.c.age_years
    shapes = PageStatements()
    order = [PATIENTS.c.id.asc()]
    cols = [a, b]
    plain = shapes.statement(PATIENTS, cols, [a == "AML", b >= 3], order, 10, 0)
    assert plain is not None and plain[1] == {"w0": "AML", "w1": 3, "_limit": 10, "_offset": 0}
    again = shapes.statement(PATIENTS, cols, [a == "T-ALL", b >= 9], order, 5, 5)
    assert again is not None and again[0] is plain[0]
    # The operator is part of the shape: at least and at most are two statements.
    at_most = shapes.statement(PATIENTS, cols, [a == "AML", b <= 3], order, 10, 0)
    assert at_most is not None and at_most[0] is not plain[0]
    assert ">=" in str(plain[0].page) and "<=" in str(at_most[0].page)
    # So is the column, and the order.
    by_sex = shapes.statement(PATIENTS, cols, [PATIENTS.c.sex == "AML", b >= 3], order, 10, 0)
    assert by_sex is not None and by_sex[0] is not plain[0]
    backwards = shapes.statement(PATIENTS, cols, [a == "AML", b >= 3], [PATIENTS.c.id.desc()], 10, 0)
    assert backwards is not None and backwards[0] is not plain[0]
    for other in ([a.like("A%")], [a.in_(["AML"])], [a.is_(None)], [b >= other_table.c.a]):
        assert shapes.statement(PATIENTS, cols, other, order, 10, 0) is None, other
    with mock.patch.object(page_statements, "MAX_SHAPES", 3):
        bounded = PageStatements()
        for sort in (a.asc(), a.desc(), b.asc(), b.desc(), PATIENTS.c.id.desc()):
            bounded.statement(PATIENTS, cols, [a == "AML"], [sort], 10, 0)
            assert len(bounded._by_shape) <= 3
