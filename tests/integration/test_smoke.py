from typing import Any

from litestar.testing import TestClient

from tests import factories as f


def test_study_round_trip(client: TestClient[Any]) -> None:
    created = f.study(client, registry_ids=["NCT04351022"], start_date="2024-03")
    response = client.get(f"/api/v1/studies/{created['id']}")
    assert response.status_code == 200
    assert response.json()["registry_ids"] == ["NCT04351022"]
