"""HEAD on every GET (RFC 9110 §9.3.2): the same status and headers as the GET, no body, for
every GET operation of the contract and the open paths."""

import json
import re
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from tests import factories as f

CONTRACT = json.loads((Path(__file__).resolve().parents[2] / "openapi" / "openapi.json").read_text())
SOME_ID = "0190a5b0-0000-7000-8000-000000000000"


def test_every_get_answers_head_with_its_headers_and_no_body(client: TestClient[Any]) -> None:
    study = f.study(client, title="HEAD")
    patient = f.patient(client, study["id"])
    f.response(client, patient["id"])
    paths = [p for p, item in CONTRACT["paths"].items() if "get" in item]
    assert len(paths) > 60
    compared = 0
    for template in paths:
        url = re.sub(r"\{(id|study_id)\}", study["id"], template)
        url = re.sub(r"\{name\}", "DM", url)
        url = re.sub(r"\{[^}]+\}", SOME_ID, url)
        got = client.get(url, follow_redirects=False)
        head = client.head(url, follow_redirects=False)
        assert head.status_code == got.status_code, (template, head.status_code, got.status_code)
        assert head.content == b"", template
        for name in ("content-type", "content-disposition", "location"):
            assert head.headers.get(name) == got.headers.get(name), (template, name)
        # the body's length and digest, where the GET gives the same body twice (an export
        # carries the time it was taken)
        if client.get(url, follow_redirects=False).content == got.content:
            for name in ("content-length", "repr-digest"):
                assert head.headers.get(name) == got.headers.get(name), (template, name)
        compared += got.status_code == 200
    assert compared > 30  # most answered 200 on the study made above
