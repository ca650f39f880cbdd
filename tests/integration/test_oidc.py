"""OpenID Connect sign-in: a token signed by a key generated here and published in a JWKS file
is accepted with the role or grants of its claim; every forged variant is refused with 401."""

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar.testing import TestClient

from service.app import create_app
from service.settings import Settings
from tests import factories as f
from tests.databases import issue_token

API = "/api/v1"
ISSUER, AUDIENCE = "https://idp.centre-a.example", "leukemia-registry"


def _key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    return {"good": _key(), "other": _key()}


@pytest.fixture
def oidc_client(
    database_url: str, client: TestClient[Any], keys: dict[str, Any], tmp_path: Path
) -> Iterator[Any]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keys["good"].public_key()))
    (tmp_path / "jwks.json").write_text(
        json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]})
    )
    settings = Settings(
        database_url=database_url,
        rate_limit_per_minute=0,
        oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE,
        oidc_jwks=str(tmp_path / "jwks.json"),
    )
    with TestClient(create_app(settings)) as oidc:
        yield oidc


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-17",
        "iat": now,
        "exp": now + 300,
        "registry_access": "reader",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(key: Any, claims: dict[str, Any], kid: str = "k1", alg: str = "RS256") -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def _get(client: TestClient[Any], token: str, url: str = "/studies") -> Any:
    return client.get(f"{API}{url}", headers={"Authorization": f"Bearer {token}"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_signed_token_is_accepted_with_its_role_or_grants(
    oidc_client: Any, client: TestClient[Any], keys: dict[str, Any]
) -> None:
    a, b = f.study(client, title="A"), f.study(client, title="B")
    assert _get(oidc_client, _sign(keys["good"], _claims())).status_code == 200
    scoped = _sign(
        keys["good"], _claims(registry_access={"grants": [{"study_id": a["id"], "role": "reader"}]})
    )
    listed = _get(oidc_client, scoped).json()["items"]
    assert [s["id"] for s in listed] == [a["id"]]
    assert _get(oidc_client, scoped, f"/studies/{b['id']}").status_code == 404
    # a reader principal cannot write; an admin claim can
    assert (
        oidc_client.post(
            f"{API}/studies",
            json={"title": "x", "design": "other"},
            headers={"Authorization": f"Bearer {_sign(keys['good'], _claims())}"},
        ).status_code
        == 403
    )
    admin = _sign(keys["good"], _claims(registry_access={"role": "admin"}))
    assert _get(oidc_client, admin, "/tokens").status_code == 200


def test_every_forged_variant_is_refused(oidc_client: Any, keys: dict[str, Any]) -> None:
    good = keys["good"]
    public_pem = good.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header, payload, signature = _sign(good, _claims()).split(".")
    forged = {
        "alg none": f"{_b64(json.dumps({'alg': 'none', 'kid': 'k1'}).encode())}.{payload}.",
        "HS256 keyed with the public key": _hs256(public_pem, _claims()),
        "another key, same kid": _sign(keys["other"], _claims()),
        "unknown kid": _sign(good, _claims(), kid="k2"),
        "tampered payload": f"{header}.{_b64(json.dumps(_claims(registry_access='admin')).encode())}.{signature}",
        "wrong issuer": _sign(good, _claims(iss="https://evil.example")),
        "wrong audience": _sign(good, _claims(aud="another-service")),
        "expired": _sign(good, _claims(exp=int(time.time()) - 3600)),
        "not yet valid": _sign(good, _claims(nbf=int(time.time()) + 3600)),
        "no expiry": _sign(good, _claims(exp=None)),
        "no access claim": _sign(good, _claims(registry_access=None)),
        "a claim that is no role": _sign(good, _claims(registry_access="superuser")),
        "not a JWT at all": "a.b.c",
    }
    for name, token in forged.items():
        response = _get(oidc_client, token)
        assert response.status_code == 401, (name, response.text)
        assert response.headers["content-type"].startswith("application/problem+json"), name


def _hs256(secret: bytes, claims: dict[str, Any]) -> str:
    """An HMAC-SHA256 token keyed with the public key's PEM: the classic algorithm confusion
    (built by hand: PyJWT itself refuses to use a PEM as an HMAC secret)."""
    import hashlib
    import hmac

    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': 'k1'}).encode())}.{_b64(json.dumps(claims).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def test_api_tokens_keep_working_beside_oidc(oidc_client: Any, database_url: str) -> None:
    secret = issue_token(database_url, "plain-reader", "reader")
    assert _get(oidc_client, secret).status_code == 200


def test_symmetric_algorithms_cannot_be_configured(tmp_path: Path) -> None:
    from service.auth.oidc import OidcVerifier

    (tmp_path / "jwks.json").write_text('{"keys": []}')
    with pytest.raises(ValueError, match="asymmetric"):
        OidcVerifier(ISSUER, AUDIENCE, str(tmp_path / "jwks.json"), "registry_access", ("RS256", "HS256"))


def test_the_jwks_can_be_fetched_from_a_url(
    database_url: str, client: TestClient[Any], keys: dict[str, Any]
) -> None:
    """The provider's JWKS endpoint (a local HTTP server here): fetched in a worker thread and
    cached; a token signed by its key is accepted, one signed by another key is not."""
    import http.server
    import threading

    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keys["good"].public_key()))
    body = json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()
    fetched: list[str] = []

    class Jwks(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetched.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = Settings(
            database_url=database_url,
            rate_limit_per_minute=0,
            oidc_issuer=ISSUER,
            oidc_audience=AUDIENCE,
            oidc_jwks=f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json",
        )
        with TestClient(create_app(settings)) as oidc:
            assert _get(oidc, _sign(keys["good"], _claims())).status_code == 200
            assert _get(oidc, _sign(keys["good"], _claims(sub="user-18"))).status_code == 200
            assert _get(oidc, _sign(keys["other"], _claims())).status_code == 401
    finally:
        server.shutdown()
        server.server_close()
    assert fetched and fetched[0] == "/.well-known/jwks.json"
    assert len(fetched) == 1  # the keys are cached, not fetched per request
