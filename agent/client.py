"""HTTP client for the verifier (protocol v1).

TLS trusts the operating system's certificate store (truststore), plus ``--ca-file`` for a
private CA; proxies come from the environment, as for any other tool on the machine.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import httpx

from agent.errors import (
    AccessDeniedError,
    ConsentRequiredError,
    DeviceInactiveError,
    EnrollmentError,
    ProtocolError,
    ServerUnreachableError,
)
from attest.errors import FormatError
from attest.manifest import Manifest, parse_manifest

EVIDENCE_MEDIA_TYPE = "application/eat+jwt"
TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Granted:
    """An allow decision."""

    access_token: str
    expires_in: int
    reasons: list[str]
    token_type: str = "Bearer"  # noqa: S105 (a token type, not a secret)
    """``DPoP`` when the token must travel with a proof of the device key (RFC 9449)."""


def tls_trust_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate-verification error behind ``exc``, if that is what failed."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    # httpx re-raises httpcore's error with the SSL error only in its message
    if "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return ssl.SSLCertVerificationError(str(exc))
    return None


def ssl_context(ca_file: str | None) -> ssl.SSLContext:
    """OS trust store, plus a private CA if given."""
    import truststore

    context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ServerUnreachableError(f"cannot load --ca-file {ca_file}: {exc}") from exc
    return context


class VerifierClient:
    """Talks to one verifier."""

    def __init__(
        self,
        base_url: str,
        *,
        ca_file: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ServerUnreachableError(
                f"server URL {base_url!r} must start with https:// (or http:// for a local test)"
            )
        self.base_url = base_url.rstrip("/")
        verify: ssl.SSLContext | bool = (
            ssl_context(ca_file) if self.base_url.startswith("https://") else True
        )
        try:
            self._http = httpx.Client(
                base_url=self.base_url, timeout=TIMEOUT_S, verify=verify, transport=transport
            )
        except (ValueError, ImportError) as exc:  # a proxy variable httpx cannot use
            raise ServerUnreachableError(
                f"the proxy settings in this environment cannot be used ({exc}); use an "
                "http://, https://, socks5:// or socks5h:// proxy in HTTPS_PROXY/ALL_PROXY, "
                "or add the verifier's host to NO_PROXY"
            ) from exc

    def close(self) -> None:
        """Close connections."""
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            untrusted = tls_trust_failure(exc)
            if untrusted is not None:
                reason = getattr(untrusted, "verify_message", None) or str(untrusted)
                raise ServerUnreachableError(
                    f"the verifier's TLS certificate at {self.base_url} is not trusted "
                    f"({reason}); if your organisation uses a private CA, pass --ca-file "
                    "CA.pem to 'envattest init' or add the CA to this machine's trust store"
                ) from exc
            raise ServerUnreachableError(
                f"cannot reach the verifier at {self.base_url} ({exc.__class__.__name__}: "
                f"{exc}); check the URL, your network and proxy, or run 'envattest doctor'"
            ) from exc

    @staticmethod
    def _problem(response: httpx.Response) -> dict[str, Any]:
        try:
            doc = response.json()
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}

    @classmethod
    def _slug(cls, response: httpx.Response) -> str:
        return str(cls._problem(response).get("type", "")).rsplit(":", 1)[-1]

    def _raise_for_problem(self, response: httpx.Response, *, during: str) -> None:
        if response.is_success:
            return
        problem = self._problem(response)
        slug = self._slug(response)
        detail = str(problem.get("detail") or response.reason_phrase)
        if slug == "consent-required":
            raise ConsentRequiredError(detail)
        if slug == "access-denied":
            reasons = [str(r) for r in problem.get("reasons", [])]
            raise AccessDeniedError(detail, reasons)
        if slug == "enrollment-rejected":
            raise EnrollmentError(detail)
        if response.status_code in (429, 503):
            retry = response.headers.get("Retry-After", "a few")
            raise ServerUnreachableError(f"{detail} (retry in {retry} s)")
        raise ProtocolError(f"{during} failed: HTTP {response.status_code}: {detail}")

    def raw_post(self, path: str, **kwargs: Any) -> httpx.Response:
        """POST with arbitrary content (device requests)."""
        return self._send("POST", path, **kwargs)

    def json_answer(self, response: httpx.Response, *, during: str) -> dict[str, Any]:
        """The JSON object of a successful answer, or the mapped error."""
        return self._json(response, during=during)

    def _json(self, response: httpx.Response, *, during: str) -> dict[str, Any]:
        self._raise_for_problem(response, during=during)
        try:
            doc = response.json()
        except ValueError as exc:
            raise ProtocolError(f"{during}: the verifier did not answer JSON") from exc
        if not isinstance(doc, dict):
            raise ProtocolError(f"{during}: the verifier's answer is not a JSON object")
        return doc

    def manifest(self) -> Manifest:
        """Fetch and parse the manifest; its hash is computed from the bytes received."""
        response = self._send("GET", "/v1/manifest")
        self._raise_for_problem(response, during="fetching the manifest")
        try:
            return parse_manifest(response.content)
        except FormatError as exc:
            raise ProtocolError(f"the verifier's manifest is invalid: {exc}") from exc

    def enroll(
        self,
        *,
        enrollment_token: str,
        public_jwk: dict[str, str],
        key_attestation: dict[str, Any],
        nonce: str | None = None,
    ) -> dict[str, Any]:
        """POST /v1/enroll."""
        body: dict[str, Any] = {
            "enrollment_token": enrollment_token,
            "public_jwk": public_jwk,
            "key_attestation": key_attestation,
        }
        if nonce is not None:
            body["nonce"] = nonce
        return self._json(self._send("POST", "/v1/enroll", json=body), during="enrollment")

    def post_json(self, path: str, body: dict[str, Any], *, during: str) -> dict[str, Any]:
        """POST a JSON body to ``path`` and return the JSON answer."""
        return self._json(self._send("POST", path, json=body), during=during)

    def challenge(self, device_id: str) -> str:
        """POST /v1/challenge: a fresh nonce; DeviceInactiveError if the device is refused."""
        response = self._send("POST", "/v1/challenge", json={"device_id": device_id})
        if response.status_code == 401 and self._slug(response) == "attestation-rejected":
            # only an enrolled, active device gets a challenge (DESIGN: challenge)
            raise DeviceInactiveError()
        doc = self._json(response, during="requesting a challenge")
        nonce = doc.get("nonce")
        if not isinstance(nonce, str):
            raise ProtocolError("the verifier's challenge has no nonce")
        return nonce

    def attest(self, evidence: str) -> Granted:
        """POST /v1/attest; AccessDeniedError or ConsentRequiredError on refusal."""
        response = self._send(
            "POST",
            "/v1/attest",
            content=evidence.encode("ascii"),
            headers={"Content-Type": EVIDENCE_MEDIA_TYPE},
        )
        doc = self._json(response, during="attestation")
        token, expires_in = doc.get("access_token"), doc.get("expires_in")
        if not isinstance(token, str) or not isinstance(expires_in, int):
            raise ProtocolError("the verifier allowed access but sent no token")
        token_type = doc.get("token_type", "Bearer")
        if token_type not in ("Bearer", "DPoP"):
            raise ProtocolError(f"the verifier issued an unknown token type {token_type!r}")
        return Granted(
            token, expires_in, [str(r) for r in doc.get("reasons", [])], token_type=token_type
        )

    def get_json(self, path: str, *, bearer: str | None = None, during: str) -> dict[str, Any]:
        """GET a JSON document, optionally with a bearer credential."""
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else None
        return self._json(self._send("GET", path, headers=headers), during=during)
