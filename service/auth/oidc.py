"""OpenID Connect bearer tokens: a JWT from the institution's identity provider, verified with
PyJWT against the provider's JWKS (a URL, fetched and cached, or a file for offline use), with
the algorithm list pinned to asymmetric ones (so `alg: none` and an HMAC "signed" with the
public key are refused), and the issuer, audience, expiry and not-before checked.

The registry's access is one claim (OIDC_CLAIM, default `registry_access`):
  "reader" | "curator" | "admin"                       a global role, or
  {"role": "reader"}                                   the same as an object, or
  {"grants": [{"study_id": …, "role": …, "sites": […]}]}   grants (service.access.grants)."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import msgspec
from anyio import to_thread

from service.access.grants import Grant, GrantList
from service.auth.tokens import Role

# Never symmetric (the JWKS is public) and never "none".
ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
LEEWAY_SECONDS = 30
JWKS_CACHE_SECONDS = 300


class RoleClaim(msgspec.Struct, forbid_unknown_fields=True):
    role: Role


class GrantsClaim(msgspec.Struct, forbid_unknown_fields=True):
    grants: GrantList


class Refused(Exception):
    """The token is not one this service accepts; the message says why (for the 401)."""


@dataclass(frozen=True)
class Principal:
    name: str
    role: str | None
    grants: tuple[Grant, ...]


class OidcVerifier:
    def __init__(
        self, issuer: str, audience: str, jwks: str, claim: str, algorithms: tuple[str, ...]
    ) -> None:
        refused = [a for a in algorithms if a not in ALLOWED_ALGORITHMS]
        if refused:
            raise ValueError(f"OIDC_ALGORITHMS may name only asymmetric algorithms, not {', '.join(refused)}")
        self.issuer = issuer
        self.audience = audience
        self.claim = claim
        self.algorithms = list(algorithms)
        self._client: jwt.PyJWKClient | None = None
        self._keys: jwt.PyJWKSet | None = None
        if jwks.startswith(("https://", "http://")):
            self._client = jwt.PyJWKClient(jwks, cache_keys=True, lifespan=JWKS_CACHE_SECONDS, timeout=5)
        else:
            self._keys = jwt.PyJWKSet.from_dict(json.loads(Path(jwks).read_text()))

    async def _key(self, token: str) -> Any:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise Refused(f"Malformed token: {exc}") from exc
        if self._client is not None:
            client = self._client
            try:
                # urllib underneath: in a thread, never on the event loop.
                return await to_thread.run_sync(client.get_signing_key_from_jwt, token)
            except jwt.PyJWTError as exc:
                raise Refused(f"No signing key for this token: {exc}") from exc
        assert self._keys is not None
        for key in self._keys.keys:
            if kid is None or key.key_id == kid:
                return key
        raise Refused("No key of the configured JWKS has this token's key id.")

    async def principal(self, token: str) -> Principal:
        key = await self._key(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise Refused(f"The token was refused: {exc}") from exc
        return Principal(f"oidc:{str(claims['sub'])[:90]}", *self._access(claims.get(self.claim)))

    def _access(self, value: Any) -> tuple[str | None, tuple[Grant, ...]]:
        if value is None:
            raise Refused(f"The token carries no `{self.claim}` claim: it grants nothing here.")
        try:
            if isinstance(value, str):
                return msgspec.convert({"role": value}, RoleClaim).role, ()
            if isinstance(value, dict) and "grants" in value:
                return None, tuple(msgspec.convert(value, GrantsClaim).grants)
            return msgspec.convert(value, RoleClaim).role, ()
        except msgspec.ValidationError as exc:
            raise Refused(f"The `{self.claim}` claim is not a role or a list of grants: {exc}") from exc


def oidc_verifier(settings: Any) -> OidcVerifier | None:
    """The verifier the settings configure, or None when OIDC is off (not all three set)."""
    if not (settings.oidc_issuer and settings.oidc_audience and settings.oidc_jwks):
        return None
    return OidcVerifier(
        settings.oidc_issuer,
        settings.oidc_audience,
        settings.oidc_jwks,
        settings.oidc_claim,
        tuple(settings.oidc_algorithms),
    )


def looks_like_jwt(secret: str) -> bool:
    return secret.count(".") == 2 and not secret.startswith("lor_")
