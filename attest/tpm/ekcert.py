"""EK certificates: a trust store of TPM-vendor CAs and a manual chain walk.

TCG EK Credential Profile 2.5 §3: EK certificates carry EKU 2.23.133.8.1 and a critical
subjectAltName with the TPM manufacturer, model and version, which stock WebPKI/client
verifiers refuse. So the chain is walked by hand with deliberately relaxed end-entity rules:

* every certificate on the path is valid at ``now``;
* each certificate is issued by the next (name match + signature, ``verify_directly_issued_by``);
* every issuer is a CA (basicConstraints cA=TRUE) whose pathLenConstraint allows the path;
* the path ends at a certificate of the trust store (every certificate the operator put in the
  directory is an anchor: vendor roots and vendor intermediates alike).

Intermediates submitted by the device are untrusted helpers to build the path, nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from attest.tpm.errors import EkCertificateError, TrustStoreError

_MAX_PATH = 6
_CERT_SUFFIXES = frozenset({".pem", ".crt", ".cer", ".der"})


@dataclass(frozen=True)
class TrustStore:
    """Trusted EK issuer certificates (roots and intermediates), by subject."""

    anchors: tuple[x509.Certificate, ...]

    def issuers_of(self, cert: x509.Certificate) -> list[x509.Certificate]:
        """Anchors whose subject is ``cert``'s issuer."""
        return [a for a in self.anchors if a.subject == cert.issuer]


def _load_file(path: Path) -> list[x509.Certificate]:
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def load_trust_store(directory: Path) -> TrustStore:
    """Load every ``*.pem|crt|cer|der`` in ``directory``; refuse a missing, empty or bad store."""
    if not directory.is_dir():
        raise TrustStoreError(
            f"EK trust store {directory} is not a directory; create it and put the TPM "
            "vendors' root and intermediate CA certificates (PEM or DER) in it"
        )
    anchors: list[x509.Certificate] = []
    try:
        paths = sorted(directory.iterdir())
    except OSError as exc:
        raise TrustStoreError(f"EK trust store {directory} is unreadable: {exc}") from exc
    for path in paths:
        if path.name.startswith(".") or path.suffix.lower() not in _CERT_SUFFIXES:
            continue
        try:
            anchors.extend(_load_file(path))
        except OSError as exc:
            raise TrustStoreError(f"EK trust store file {path} is unreadable: {exc}") from exc
        except ValueError as exc:
            raise TrustStoreError(
                f"EK trust store file {path} is not a PEM or DER X.509 certificate: {exc}"
            ) from exc
    if not anchors:
        raise TrustStoreError(
            f"EK trust store {directory} holds no certificates (*.pem, *.crt, *.cer, *.der); "
            "add the TPM vendors' CA certificates, or no TPM key can be attested"
        )
    return TrustStore(tuple(anchors))


def trust_store_from_certificates(certificates: Iterable[x509.Certificate]) -> TrustStore:
    """A trust store built in memory (tests, or certificates from another source)."""
    anchors = tuple(certificates)
    if not anchors:
        raise TrustStoreError("an EK trust store needs at least one certificate")
    return TrustStore(anchors)


def _check_validity(cert: x509.Certificate, now: datetime, role: str) -> None:
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise EkCertificateError(
            f"{role} certificate {cert.subject.rfc4514_string()!r} is not valid at "
            f"{now.isoformat()} (valid {cert.not_valid_before_utc.isoformat()} to "
            f"{cert.not_valid_after_utc.isoformat()})"
        )


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _check_ca(issuer: x509.Certificate, ca_below: int) -> None:
    """``issuer`` must be a CA whose pathLenConstraint allows ``ca_below`` CAs under it."""
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise EkCertificateError(
            f"issuer {issuer.subject.rfc4514_string()!r} has no basicConstraints; not a CA"
        ) from None
    if not constraints.ca:
        raise EkCertificateError(f"issuer {issuer.subject.rfc4514_string()!r} is not a CA")
    if constraints.path_length is not None and ca_below > constraints.path_length:
        raise EkCertificateError(
            f"issuer {issuer.subject.rfc4514_string()!r} pathLenConstraint "
            f"{constraints.path_length} forbids this chain"
        )


def verify_ek_certificate(
    ek_cert: x509.Certificate,
    *,
    intermediates: Sequence[x509.Certificate],
    trust_store: TrustStore,
    now: datetime,
) -> tuple[x509.Certificate, ...]:
    """Walk ``ek_cert`` to an anchor; return the path above the EK cert (anchor last)."""
    _check_validity(ek_cert, now, "EK")
    path: list[x509.Certificate] = []
    current = ek_cert
    for _ in range(_MAX_PATH):
        ca_below = len(path)
        for anchor in trust_store.issuers_of(current):
            if _issued_by(current, anchor):
                _check_ca(anchor, ca_below)
                _check_validity(anchor, now, "trusted EK CA")
                return (*path, anchor)
        candidates = [c for c in intermediates if c.subject == current.issuer and c not in path]
        issuer = next((c for c in candidates if _issued_by(current, c)), None)
        if issuer is None:
            raise EkCertificateError(
                "EK certificate does not chain to the EK trust store: no trusted or submitted "
                f"certificate issued {current.subject.rfc4514_string()!r} "
                f"(issuer {current.issuer.rfc4514_string()!r}); add the TPM vendor's CA to the "
                "trust store if this TPM is expected"
            )
        _check_ca(issuer, ca_below)
        _check_validity(issuer, now, "intermediate EK CA")
        path.append(issuer)
        current = issuer
    raise EkCertificateError(f"EK certificate chain is longer than {_MAX_PATH} certificates")


def parse_certificate(data: bytes, what: str) -> x509.Certificate:
    """Parse a DER certificate from the statement."""
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise EkCertificateError(f"{what} is not a DER X.509 certificate: {exc}") from exc
