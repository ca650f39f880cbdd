"""A child written after its parent was deleted by another request (Postgres checks the foreign
key at the insert, after the service's own check) is an unknown reference (422), not a conflict;
a delete refused because rows still refer to it stays a conflict (409)."""

from types import SimpleNamespace

from sqlalchemy.exc import IntegrityError

from service.common.repository import foreign_key_violation


def _error(sqlstate: str, message: str) -> IntegrityError:
    class Orig(Exception):
        pass

    orig = Orig(message)
    orig.sqlstate = sqlstate  # type: ignore[attr-defined]
    return IntegrityError("INSERT …", {}, orig)


def test_an_insert_naming_a_deleted_parent_is_an_unknown_reference() -> None:
    assert foreign_key_violation(
        _error("23503", 'insert or update on table "outcomes" violates foreign key constraint "fk_x"')
    )


def test_a_delete_of_a_row_still_referred_to_and_other_constraints_are_not() -> None:
    assert not foreign_key_violation(
        _error("23503", 'update or delete on table "patients" violates foreign key constraint "fk_x"')
    )
    assert not foreign_key_violation(_error("23505", "duplicate key value violates unique constraint"))
    assert not foreign_key_violation(IntegrityError("INSERT", {}, SimpleNamespace()))  # type: ignore[arg-type]
