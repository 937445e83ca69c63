"""``envattest doctor``: check each link from this machine to a token, and say how to fix it.

Checks run in order and later ones are skipped when what they need failed: enrollment,
server reachability (through the proxy the environment configures, as every request does),
TLS trust, consent against the verifier's current manifest, the device key (load it and sign
test bytes), and the token (a valid cached one, or a dry attestation). The dry attestation asks
for a challenge and builds and signs evidence, but never sends it: doctor sends no signals.
"""

from __future__ import annotations

import ipaddress
import json
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from agent.client import VerifierClient, tls_trust_failure
from agent.errors import AgentError, DeviceInactiveError, ServerUnreachableError
from agent.home import AgentHome, Enrollment
from agent.tokencache import MIN_REMAINING_S, cached_token, verifier_token_status
from attest.errors import AttestError

if TYPE_CHECKING:
    from agent.collectors import CollectionContext
    from attest.keys import KeyProvider
    from attest.manifest import Manifest

CheckStatus = Literal["PASS", "FAIL", "SKIP"]
ClientFactory = Callable[[str, "str | None"], VerifierClient]
KeyLoader = Callable[[AgentHome, Enrollment], "KeyProvider"]
TEST_BYTES = b"envattest doctor: key check"


@dataclass(frozen=True)
class CheckResult:
    """One line of the report; ``fix`` says what to do when it failed."""

    name: str
    status: CheckStatus
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class DoctorReport:
    """Every check, in the order run."""

    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """No check failed."""
        return all(c.status != "FAIL" for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON object."""
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def describe_proxy(url: str, environ: Mapping[str, str]) -> str:
    """Which proxy the environment routes ``url`` through (no credentials), or 'direct'."""
    parts = urlsplit(url)
    lowered = {k.lower(): v for k, v in environ.items()}
    proxies = {
        scheme: lowered[f"{scheme}_proxy"]
        for scheme in ("http", "https", "all")
        if lowered.get(f"{scheme}_proxy")
    }
    no_proxy = lowered.get("no_proxy", "")
    host = parts.hostname or ""
    if no_proxy and _bypassed(host, no_proxy):
        return "direct (NO_PROXY)"
    chosen = proxies.get(parts.scheme) or proxies.get("all")
    if not chosen:
        return "direct"
    proxy = urlsplit(chosen if "://" in chosen else f"http://{chosen}")
    port = f":{proxy.port}" if proxy.port else ""
    return f"via proxy {proxy.scheme}://{proxy.hostname}{port}"


def _bypassed(host: str, no_proxy: str) -> bool:
    # urllib's reading of NO_PROXY; its dict is keyed like getproxies_environment() ("no")
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    return bool(bypass(host, {"no": no_proxy}))


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class _Doctor:
    """The checks and what they found, so later checks can build on earlier ones."""

    home: AgentHome
    client_factory: ClientFactory
    key_loader: KeyLoader
    context_factory: Callable[[], CollectionContext]
    environ: Mapping[str, str]
    clock: Callable[[], float]
    results: list[CheckResult] = field(default_factory=list)
    manifest: Manifest | None = None

    def add(self, name: str, status: CheckStatus, detail: str, fix: str = "") -> None:
        self.results.append(CheckResult(name, status, detail, fix))

    def skip(self, name: str, why: str) -> None:
        self.add(name, "SKIP", why)

    def enrollment(self) -> Enrollment | None:
        try:
            enrollment = self.home.enrollment()
        except AgentError as exc:
            self.add("enrollment", "FAIL", _what(exc), _fix_from(exc))
            return None
        self.add(
            "enrollment",
            "PASS",
            f"device {enrollment.device_id} at {enrollment.server} "
            f"({enrollment.key_provider} key, recorded as {enrollment.key_class})",
        )
        return enrollment

    def server_and_tls(self, server: str, ca_file: str | None) -> VerifierClient | None:
        route = describe_proxy(server, self.environ)
        try:
            client = self.client_factory(server, ca_file)
        except ServerUnreachableError as exc:
            self.skip("server", "no client: see tls")
            self.add("tls", "FAIL", _what(exc), f"fix or drop --ca-file ({ca_file})")
            return None
        try:
            manifest = client.manifest()
        except ServerUnreachableError as exc:
            if tls_trust_failure(exc) is not None:
                self.add("server", "PASS", f"{server} answered the TLS handshake ({route})")
                self.add(
                    "tls",
                    "FAIL",
                    _what(exc),
                    "pass the private CA with 'envattest init --ca-file CA.pem' (or "
                    "'envattest doctor --ca-file'), or add it to the OS trust store",
                )
            else:
                self.add(
                    "server",
                    "FAIL",
                    f"{_what(exc)} (route: {route})",
                    "check the URL, your network, and HTTPS_PROXY/NO_PROXY",
                )
                self.skip("tls", "server unreachable")
            client.close()
            return None
        except AgentError as exc:
            self.add(
                "server",
                "FAIL",
                f"{server} ({route}) answered, but not as a verifier: {_what(exc)}",
                "check the URL (it is the verifier's base URL, without /v1) and the proxy",
            )
            self.skip("tls", "server answered wrongly")
            client.close()
            return None
        self.manifest = manifest
        self.add("server", "PASS", f"{server} reachable ({route}), manifest served")
        if server.startswith("https://"):
            trust = "OS trust store" + (f" + {ca_file}" if ca_file else "")
            self.add("tls", "PASS", f"certificate trusted ({trust})")
        elif _is_loopback(server):
            self.skip("tls", "plain http:// on loopback (local testing only)")
        else:
            self.add(
                "tls",
                "FAIL",
                f"{server} uses plain http://: tokens and evidence travel unencrypted",
                "use the verifier's https:// URL: 'envattest forget --local' then 'envattest "
                "init --server https://...'",
            )
        return client

    def consent(self) -> bool:
        from agent.consent import require_consent

        if self.manifest is None:
            self.skip("consent", "needs the verifier's manifest")
            return False
        try:
            record = require_consent(self.home.consent(), self.manifest.sha256)
        except AgentError as exc:
            stored = self.home.consent()
            detail = str(exc)
            if stored is not None and stored.manifest_sha256 != self.manifest.sha256:
                detail = (
                    f"consent is for manifest {stored.manifest_sha256[:16]}..., the verifier "
                    f"now serves {self.manifest.sha256[:16]}..."
                )
            self.add(
                "consent", "FAIL", _what(detail), "run 'envattest consent' to review and agree"
            )
            return False
        self.add(
            "consent",
            "PASS",
            f"{len(record.fields)} fields, manifest {record.manifest_sha256[:16]}... is current",
        )
        return True

    def key(self, enrollment: Enrollment) -> KeyProvider | None:
        from attest.jose import parse_compact, sign_compact, verify_es256
        from attest.jwk import load_public_jwk

        try:
            key = self.key_loader(self.home, enrollment)
            jws = sign_compact({"alg": "ES256", "typ": "JWT"}, TEST_BYTES, key.sign)
            verify_es256(parse_compact(jws), expected_key=load_public_jwk(key.public_jwk()))
        except (AgentError, AttestError, OSError, ValueError) as exc:
            self.add(
                "key",
                "FAIL",
                f"{enrollment.key_provider} key unusable: {_what(exc)}",
                _fix_from(exc) or "if the key is lost, 'envattest forget' then 'envattest init'",
            )
            return None
        self.add("key", "PASS", f"{enrollment.key_provider} key loaded; a test signature verifies")
        return key

    def token(
        self,
        enrollment: Enrollment,
        client: VerifierClient | None,
        key: KeyProvider | None,
        consented: bool,
    ) -> None:
        if self.home.inactive_since() is not None:
            inactive = DeviceInactiveError()
            self.add("token", "FAIL", _what(inactive), _fix_from(inactive))
            return
        left = _cached_seconds_left(self.home.token_path, self.clock())
        cached = cached_token(self.home.token_path, now=self.clock())
        if left > MIN_REMAINING_S and cached is not None:
            status = verifier_token_status(self.home.root, cached)
            if status.state == "device-inactive":
                inactive = DeviceInactiveError(status.detail)
                self.home.mark_inactive(str(inactive), at=int(self.clock()))
                self.add("token", "FAIL", _what(inactive), _fix_from(inactive))
                return
            if status.state != "refresh":
                seen = "confirmed by the verifier" if status.state == "active" else "not checked"
                self.add("token", "PASS", f"cached token valid for {int(left)} s ({seen})")
                return
        if client is None or key is None or not consented:
            self.add(
                "token",
                "FAIL",
                "no valid cached token, and a fresh one cannot be had until the checks above pass",
                "fix the failures above, then run 'envattest token'",
            )
            return
        from agent.attestation import build_claims
        from agent.consent import require_consent
        from attest.evidence import sign_evidence

        try:
            nonce = client.challenge(enrollment.device_id)
            claims = build_claims(
                device_id=enrollment.device_id,
                consent=require_consent(self.home.consent()),
                ctx=self.context_factory(),
                nonce=nonce,
                now=int(self.clock()),
            )
            sign_evidence(claims, key.sign)
        except DeviceInactiveError as exc:
            self.home.mark_inactive(str(exc), at=int(self.clock()))
            self.add("token", "FAIL", _what(exc), _fix_from(exc))
            return
        except (AgentError, AttestError) as exc:
            self.add(
                "token",
                "FAIL",
                f"no valid cached token, and a dry attestation failed: {_what(exc)}",
                _fix_from(exc) or "run 'envattest attest' to see the verifier's answer",
            )
            return
        self.add(
            "token",
            "PASS",
            f"no valid cached token; dry attestation ok (challenge issued, evidence for "
            f"{len(claims.signals)} fields signed, not sent); 'envattest token' will attest",
        )


def _cached_seconds_left(token_path: Path, now: float) -> float:
    try:
        doc = json.loads(token_path.read_text(encoding="utf-8"))
        expires_at = float(doc["expires_at"]) if isinstance(doc, dict) else 0.0
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0
    return max(0.0, expires_at - now)


def _what(exc: BaseException | str) -> str:
    """What went wrong: an agent error message up to its first '; '."""
    return str(exc).split("; ", 1)[0]


def _fix_from(exc: BaseException) -> str:
    """What to do: the rest of an agent error message after its first '; ', if any."""
    text = str(exc)
    return text.split("; ", 1)[1] if "; " in text else ""


def run_checks(
    home: AgentHome,
    *,
    client_factory: ClientFactory,
    key_loader: KeyLoader,
    context_factory: Callable[[], CollectionContext],
    environ: Mapping[str, str],
    server: str | None = None,
    ca_file: str | None = None,
    clock: Callable[[], float] = time.time,
) -> DoctorReport:
    """Run every check; ``server``/``ca_file`` override the enrolled ones (e.g. before init)."""
    doctor = _Doctor(home, client_factory, key_loader, context_factory, environ, clock)
    enrollment = doctor.enrollment()
    target = server or (enrollment.server if enrollment else None)
    trust = ca_file or (enrollment.ca_file if enrollment else None)
    client = None
    if target is None:
        doctor.skip("server", "no server: enroll, or pass --server URL")
        doctor.skip("tls", "no server")
    else:
        client = doctor.server_and_tls(target, trust)
    try:
        if enrollment is None:
            for name in ("consent", "key", "token"):
                doctor.skip(name, "not enrolled")
            return DoctorReport(tuple(doctor.results))
        consented = doctor.consent()
        key = doctor.key(enrollment)
        doctor.token(enrollment, client, key, consented)
    finally:
        if client is not None:
            client.close()
    return DoctorReport(tuple(doctor.results))
