"""The ``tpm2`` provider: a P-256 signing key that never leaves the TPM, with proof.

Key hierarchy (all objects re-created or reloaded per operation and flushed afterwards,
because swtpm and ``/dev/tpm0`` have no resource manager and only 3 transient slots):

* SRK: ECC P-256 storage primary in the owner hierarchy from the TCG provisioning template
  (re-created deterministically; a persistent ``0x81000001`` with the same name is reused).
* signing key: ECC P-256, ECDSA/SHA-256, fixedTPM | fixedParent | sensitiveDataOrigin |
  userWithAuth | sign | noDA, child of the SRK.
* AK: ECC P-256 restricted signing key (ECDSA/SHA-256), same attributes plus restricted,
  child of the SRK (its clock counters are obfuscated; the verifier does not use them).
* EK: from the TCG EK Credential Profile template matching the EK certificate in NV
  (``ecc-p256`` 0x01c0000a, ``ecc-p384`` 0x01c00016, ``rsa2048`` 0x01c00002); a persistent EK
  at the conventional handle is used when its public area equals the template's.

The key file (JSON, owner-only) holds TPM2B_PRIVATE/TPM2B_PUBLIC blobs of the signing key and
the AK, the EK kind and the SRK name; the blobs are useless outside this TPM.

``attestation(nonce)`` returns the ``tpm2`` statement (wire form: see
``attest.keyattest.tpm2_statement``)::

    format             "tpm2"
    ek_cert            base64url DER EK certificate read from NV (trailing NV padding removed)
    ek_chain           base64url DER certificates from NV 0x01c00100-0x01c001ff (only if any)
    ek_public          base64url TPMT_PUBLIC of the EK the certificate names
    ak_public          base64url TPMT_PUBLIC of the AK
    key_public         base64url TPMT_PUBLIC of the signing key (the JWK's key)
    certify_info       base64url TPMS_ATTEST of TPM2_Certify(signing key, AK, qualifyingData=nonce)
    certify_signature  base64url TPMT_SIGNATURE (ECDSA/SHA-256 by the AK) over certify_info

``activate_credential(credential_blob, encrypted_secret)`` takes the marshaled
TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET from the server and returns the secret.

tpm2-pytss is imported lazily so this module imports (and ``probe_tpm2`` answers) without it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from attest.b64 import b64url_decode, b64url_encode
from attest.errors import FormatError, KeyProviderError
from attest.jwk import public_jwk
from attest.keyattest.tpm2_statement import build_tpm2_statement
from attest.keys import KeyClass, ProviderName
from attest.privatefile import write_private_atomic

DEFAULT_TCTI = "device:/dev/tpmrm0"
KEY_FILE_NAME = "tpm2-key.json"
EkKind = Literal["ecc-p256", "ecc-p384", "rsa2048"]

# kind -> (tpm2-pytss template name, EK certificate NV index, conventional persistent handle)
_EK_KINDS: dict[str, tuple[str, int, int]] = {
    "ecc-p256": ("EK-ECC256", 0x01C0000A, 0x81010002),
    "ecc-p384": ("EK-HIGH-ECC384", 0x01C00016, 0x81010016),
    "rsa2048": ("EK-RSA2048", 0x01C00002, 0x81010001),
}
_EK_ORDER: tuple[EkKind, ...] = ("ecc-p256", "ecc-p384", "rsa2048")
_EK_CHAIN_RANGE = (0x01C00100, 0x01C001FF)
_SRK_PERSISTENT = 0x81000001
_FILE_VERSION = 1
_RC_LOCKOUT = 0x921
_RC_NV_MISSING = 0x18B  # TPM_RC_HANDLE on the first handle: the NV index is not defined
_INSTALL_HINT = (
    "install it with: pip install 'envattest[tpm]' (needs libtss2: apt-get install libtss2-dev)"
)


def _pytss() -> Any:
    """Import tpm2_pytss lazily and quietly (expected "not found" probes must not log)."""
    os.environ.setdefault("TSS2_LOG", "all+none")
    try:
        import tpm2_pytss
    except ImportError as exc:
        raise KeyProviderError(f"TPM keys need tpm2-pytss 3.x; {_INSTALL_HINT}") from exc
    return tpm2_pytss


def key_file_path(path: Path) -> Path:
    """``path`` itself, or ``path / KEY_FILE_NAME`` when it names a directory (no suffix)."""
    return path / KEY_FILE_NAME if path.is_dir() or not path.suffix else path


def _has_resource_manager(tcti: str) -> bool:
    return "tpmrm" in tcti or tcti.startswith("tabrmd")


def _device_problem(tcti: str) -> str | None:
    """A human fix for a device TCTI that cannot work, checked before the TSS tries."""
    if not tcti.startswith("device:"):
        return None
    path = tcti.split(":", 1)[1] or "/dev/tpmrm0"
    if not os.path.exists(path):
        return (
            f"no TPM device at {path}: this machine has no TPM 2.0 or it is disabled in "
            "firmware; enable it, or enroll with '--key software'"
        )
    if not os.access(path, os.R_OK | os.W_OK):
        return (
            f"permission denied on {path}: add your user to the 'tss' group "
            "(sudo usermod -aG tss $USER), then log out and back in"
        )
    return None


def _explain(exc: Exception, doing: str, tcti: str) -> KeyProviderError:
    """Map a TSS error to a KeyProviderError that says how to fix it."""
    rc = int(getattr(exc, "rc", 0) or 0)
    if rc & 0xFFF == _RC_LOCKOUT:
        return KeyProviderError(
            f"the TPM is in dictionary-attack lockout while {doing}; wait for the lockout to "
            "expire or clear it with 'tpm2_dictionarylockout -c' (needs the lockout auth)"
        )
    text = str(exc)
    if "tcti" in text.lower():
        return KeyProviderError(
            f"cannot talk to the TPM through TCTI {tcti!r} while {doing} ({text}); check the "
            "device or simulator, or pass --tcti / set ENVATTEST_TCTI"
        )
    return KeyProviderError(f"the TPM refused {doing}: {text}")


@dataclass(frozen=True)
class ProbeResult:
    """Whether the tpm2 provider can work here, and why not."""

    available: bool
    reason: str


@dataclass(frozen=True)
class _KeyFile:
    key_private: bytes
    key_public: bytes
    ak_private: bytes
    ak_public: bytes
    ek_kind: EkKind
    srk_name: bytes

    def dump(self) -> bytes:
        return json.dumps(
            {
                "version": _FILE_VERSION,
                "provider": ProviderName.TPM2.value,
                "ek_kind": self.ek_kind,
                "srk_name": b64url_encode(self.srk_name),
                "key_private": b64url_encode(self.key_private),
                "key_public": b64url_encode(self.key_public),
                "ak_private": b64url_encode(self.ak_private),
                "ak_public": b64url_encode(self.ak_public),
            },
            indent=1,
        ).encode()

    @classmethod
    def parse(cls, data: bytes) -> _KeyFile:
        doc = json.loads(data)
        if doc.get("version") != _FILE_VERSION or doc.get("ek_kind") not in _EK_KINDS:
            raise ValueError("unsupported key file version or EK kind")
        return cls(
            key_private=b64url_decode(doc["key_private"]),
            key_public=b64url_decode(doc["key_public"]),
            ak_private=b64url_decode(doc["ak_private"]),
            ak_public=b64url_decode(doc["ak_public"]),
            ek_kind=doc["ek_kind"],
            srk_name=b64url_decode(doc["srk_name"]),
        )


class _Tpm:
    """One ESAPI connection; every transient it creates is flushed on close."""

    def __init__(self, tcti: str) -> None:
        problem = _device_problem(tcti)
        if problem:
            raise KeyProviderError(problem)
        self.t = _pytss()
        self.tcti = tcti
        try:
            self.esapi = self.t.ESAPI(tcti)
        except self.t.TSS2_Exception as exc:
            raise _explain(exc, "connecting", tcti) from exc
        self._transients: list[Any] = []
        if not _has_resource_manager(tcti):
            self._flush_leftovers()

    def _flush_leftovers(self) -> None:
        # Without a resource manager a crashed run leaves objects in the 3 slots.
        t = self.t
        _, data = self.esapi.get_capability(t.TPM2_CAP.HANDLES, t.TPM2_HT.TRANSIENT << 24, 16)
        for handle in data.data.handles:
            self.esapi.flush_context(self.esapi.tr_from_tpmpublic(handle))

    def track(self, handle: Any) -> Any:
        self._transients.append(handle)
        return handle

    def owns(self, handle: Any) -> bool:
        return handle in self._transients

    def flush(self, handle: Any) -> None:
        self._transients.remove(handle)
        self.esapi.flush_context(handle)

    def close(self) -> None:
        for handle in reversed(self._transients):
            with contextlib.suppress(Exception):
                self.esapi.flush_context(handle)
        self._transients.clear()
        self.esapi.close()


@contextlib.contextmanager
def _connect(tcti: str, doing: str) -> Iterator[_Tpm]:
    tpm = _Tpm(tcti)
    try:
        yield tpm
    except KeyProviderError:
        raise
    except tpm.t.TSS2_Exception as exc:
        raise _explain(exc, doing, tcti) from exc
    finally:
        tpm.close()


def _ecc_p256_template(tpm: _Tpm, attributes: str, *, storage: bool) -> Any:
    t = tpm.t
    spec = "ecc256:aes128cfb" if storage else "ecc256:ecdsa-sha256:null"
    template = t.TPM2B_PUBLIC.parse(spec, objectAttributes=attributes, nameAlg="sha256")
    if storage:  # TCG provisioning guidance SRK template: zero-filled unique
        template.publicArea.unique.ecc.x = b"\0" * 32
        template.publicArea.unique.ecc.y = b"\0" * 32
    return template


_SRK_ATTRS = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt"
_KEY_ATTRS = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|sign"
_AK_ATTRS = _KEY_ATTRS + "|restricted"


def _load_srk(tpm: _Tpm, expected_name: bytes | None) -> Any:
    """The SRK handle: a persistent one with the recorded name, else a re-created primary."""
    t = tpm.t
    if expected_name is not None:
        with contextlib.suppress(t.TSS2_Exception):
            persistent = tpm.esapi.tr_from_tpmpublic(_SRK_PERSISTENT)
            if bytes(tpm.esapi.tr_get_name(persistent)) == expected_name:
                return persistent
    template = _ecc_p256_template(tpm, _SRK_ATTRS, storage=True)
    handle, *_ = tpm.esapi.create_primary(None, template, t.ESYS_TR.OWNER)
    return tpm.track(handle)


def _read_nv(tpm: _Tpm, index: int) -> bytes | None:
    from tpm2_pytss.utils import NoSuchIndex, NVReadEK

    try:
        data: bytes = NVReadEK(tpm.esapi)(index)
    except NoSuchIndex:
        return None
    except tpm.t.TSS2_Exception as exc:
        if int(exc.rc) & 0xFFF == _RC_NV_MISSING & 0xFFF:
            return None
        raise
    return data


def _trim_der(data: bytes) -> bytes:
    """NV areas are often larger than the certificate: cut at the DER SEQUENCE's end."""
    if len(data) < 2 or data[0] != 0x30:
        return data
    first = data[1]
    if first < 0x80:
        return data[: 2 + first]
    count = first & 0x7F
    length = int.from_bytes(data[2 : 2 + count], "big")
    return data[: 2 + count + length]


def _ek_chain(tpm: _Tpm) -> list[bytes]:
    t = tpm.t
    low, high = _EK_CHAIN_RANGE
    _, data = tpm.esapi.get_capability(t.TPM2_CAP.HANDLES, low, high - low + 1)
    chain = []
    for index in data.data.handles:
        if low <= int(index) <= high:
            blob = _read_nv(tpm, int(index))
            if blob:
                chain.append(_trim_der(blob))
    return chain


def _pick_ek_kind(tpm: _Tpm, wanted: EkKind | None) -> EkKind:
    kinds = (wanted,) if wanted else _EK_ORDER
    for kind in kinds:
        if _read_nv(tpm, _EK_KINDS[kind][1]) is not None:
            return kind
    indexes = ", ".join(f"0x{_EK_KINDS[k][1]:08x}" for k in kinds)
    raise KeyProviderError(
        f"this TPM has no EK certificate in NV ({indexes}), so the server cannot verify it; "
        "provision the manufacturer's EK certificate into NV (tpm2_nvdefine/tpm2_nvwrite) or "
        "enroll with '--key software'"
    )


def _load_ek(tpm: _Tpm, kind: EkKind) -> tuple[Any, Any, bytes]:
    """(EK handle, TPM2B_PUBLIC, DER certificate) for ``kind``."""
    from tpm2_pytss.utils import NVReadEK, create_ek_template

    t = tpm.t
    template_name, cert_index, persistent_handle = _EK_KINDS[kind]
    cert = _read_nv(tpm, cert_index)
    if cert is None:
        _pick_ek_kind(tpm, kind)  # raises the "no EK certificate" explanation
    _, template = create_ek_template(template_name, NVReadEK(tpm.esapi))
    with contextlib.suppress(t.TSS2_Exception):
        handle = tpm.esapi.tr_from_tpmpublic(persistent_handle)
        public, _, _ = tpm.esapi.read_public(handle)
        if _same_template(public.publicArea, template.publicArea):
            return handle, public, _trim_der(cert or b"")
    handle, public, *_ = tpm.esapi.create_primary(None, template, t.ESYS_TR.ENDORSEMENT)
    return tpm.track(handle), public, _trim_der(cert or b"")


def _same_template(public: Any, template: Any) -> bool:
    """A persistent EK is ours if everything but the TPM-filled ``unique`` matches."""
    return bool(
        public.type == template.type
        and public.nameAlg == template.nameAlg
        and public.objectAttributes == template.objectAttributes
        and bytes(public.authPolicy) == bytes(template.authPolicy)
        and public.parameters.marshal(public.type) == template.parameters.marshal(template.type)
    )


def _ek_session(tpm: _Tpm, ek_public: Any) -> Any:
    """Authorization for the EK: password if userWithAuth, else PolicySecret(endorsement)."""
    t = tpm.t
    if ek_public.publicArea.objectAttributes & t.TPMA_OBJECT.USERWITHAUTH:
        return t.ESYS_TR.PASSWORD
    session = tpm.esapi.start_auth_session(
        t.ESYS_TR.NONE,
        t.ESYS_TR.NONE,
        t.TPM2_SE.POLICY,
        t.TPMT_SYM_DEF(algorithm=t.TPM2_ALG.NULL),
        ek_public.publicArea.nameAlg,
    )
    tpm.track(session)
    tpm.esapi.policy_secret(t.ESYS_TR.ENDORSEMENT, session)
    return session


class Tpm2Key:
    """A P-256 key inside a TPM 2.0; ``attestation()`` proves it to the verifier."""

    name = ProviderName.TPM2
    claimed_class = KeyClass.TPM2

    def __init__(self, path: Path, blobs: _KeyFile, *, tcti: str) -> None:
        self._path = path
        self._blobs = blobs
        self._tcti = tcti
        self._public_jwk = _jwk_from_tpm2b_public(blobs.key_public)

    @classmethod
    def create(
        cls, path: Path, *, tcti: str | None = None, ek_kind: EkKind | None = None
    ) -> Tpm2Key:
        """Create the signing key and AK in the TPM; store their blobs at ``key_file_path(path)``.

        ``tcti`` None means ``DEFAULT_TCTI``; ``ek_kind`` None picks the first EK with a
        certificate in NV, in the order ecc-p256, ecc-p384, rsa2048.
        """
        path, tcti = key_file_path(path), tcti or DEFAULT_TCTI
        with _connect(tcti, "creating the device key") as tpm:
            kind = _pick_ek_kind(tpm, ek_kind)
            srk = _load_srk(tpm, None)
            srk_name = bytes(tpm.esapi.tr_get_name(srk))
            key_template = _ecc_p256_template(tpm, _KEY_ATTRS, storage=False)
            key_private, key_public, *_ = tpm.esapi.create(srk, None, key_template)
            ak_template = _ecc_p256_template(tpm, _AK_ATTRS, storage=False)
            ak_private, ak_public, *_ = tpm.esapi.create(srk, None, ak_template)
        blobs = _KeyFile(
            key_private=key_private.marshal(),
            key_public=key_public.marshal(),
            ak_private=ak_private.marshal(),
            ak_public=ak_public.marshal(),
            ek_kind=kind,
            srk_name=srk_name,
        )
        write_private_atomic(path, blobs.dump())
        return cls(path, blobs, tcti=tcti)

    @classmethod
    def load(cls, path: Path, *, tcti: str | None = None) -> Tpm2Key:
        """Load the key file written by ``create`` (the TPM is only contacted when used)."""
        path, tcti = key_file_path(path), tcti or DEFAULT_TCTI
        try:
            blobs = _KeyFile.parse(path.read_bytes())
        except FileNotFoundError:
            raise KeyProviderError(
                f"no device key at {path}: run 'envattest init' to enroll"
            ) from None
        except (OSError, ValueError, KeyError, TypeError, FormatError) as exc:
            raise KeyProviderError(
                f"TPM key file {path} is unreadable ({exc}); run 'envattest forget' and "
                "'envattest init' to enroll a new key"
            ) from exc
        return cls(path, blobs, tcti=tcti)

    @property
    def ek_kind(self) -> EkKind:
        """Which endorsement key the attestation uses."""
        return self._blobs.ek_kind

    def public_jwk(self) -> dict[str, str]:
        """The signing key as a P-256 JWK."""
        return dict(self._public_jwk)

    def _load_children(self, tpm: _Tpm, *, ak: bool, key: bool) -> tuple[Any, Any]:
        t = tpm.t
        srk = _load_srk(tpm, self._blobs.srk_name)
        loaded: list[Any] = []
        try:
            for wanted, private, public in (
                (key, self._blobs.key_private, self._blobs.key_public),
                (ak, self._blobs.ak_private, self._blobs.ak_public),
            ):
                if not wanted:
                    loaded.append(None)
                    continue
                priv, _ = t.TPM2B_PRIVATE.unmarshal(private)
                pub, _ = t.TPM2B_PUBLIC.unmarshal(public)
                loaded.append(tpm.track(tpm.esapi.load(srk, priv, pub)))
        except t.TSS2_Exception as exc:
            raise KeyProviderError(
                f"the TPM cannot load the key in {self._path} ({exc}); it was made by another "
                "TPM or the TPM was cleared: run 'envattest forget' and 'envattest init'"
            ) from exc
        if tpm.owns(srk):  # children stay loaded without their parent: free a slot
            tpm.flush(srk)
        return loaded[0], loaded[1]

    def sign(self, data: bytes) -> bytes:
        """ES256: SHA-256 on the host, one TPM2_Sign of the digest, raw ``r||s``."""
        with _connect(self._tcti, "signing") as tpm:
            key, _ = self._load_children(tpm, ak=False, key=True)
            return _sign_loaded(tpm, key, data)

    @contextlib.contextmanager
    def held_signer(self) -> Iterator[Callable[[bytes], bytes]]:
        """A signer that keeps one connection and the loaded key for many signatures.

        ``sign`` connects, re-creates the SRK and loads the key each time, several TPM
        commands per signature; a proxy that signs a proof per request holds them instead.
        Use it from one thread, and briefly: a TPM without a resource manager serves one
        connection at a time.
        """
        with _connect(self._tcti, "signing") as tpm:
            key, _ = self._load_children(tpm, ak=False, key=True)

            def sign(data: bytes) -> bytes:
                try:
                    return _sign_loaded(tpm, key, data)
                except tpm.t.TSS2_Exception as exc:
                    raise _explain(exc, "signing", self._tcti) from exc

            yield sign

    def attestation(self, nonce: bytes) -> dict[str, Any]:
        """The ``tpm2`` statement: EK cert and public, AK, and TPM2_Certify over ``nonce``."""
        with _connect(self._tcti, "certifying the device key") as tpm:
            t = tpm.t
            key, ak = self._load_children(tpm, ak=True, key=True)
            scheme = t.TPMT_SIG_SCHEME(scheme=t.TPM2_ALG.NULL)
            certify_info, signature = tpm.esapi.certify(key, ak, nonce, scheme)
            tpm.flush(key)
            tpm.flush(ak)
            _, ek_public, ek_cert = _load_ek(tpm, self._blobs.ek_kind)
            chain = _ek_chain(tpm)
        return build_tpm2_statement(
            ek_cert=ek_cert,
            ek_chain=chain,
            ek_public=ek_public.publicArea.marshal(),
            ak_public=_tpmt_public(self._blobs.ak_public),
            key_public=_tpmt_public(self._blobs.key_public),
            certify_info=bytes(certify_info),
            certify_signature=signature.marshal(),
        )

    def activate_credential(self, credential_blob: bytes, encrypted_secret: bytes) -> bytes:
        """Answer the server's MakeCredential challenge (TPM2_ActivateCredential)."""
        t = _pytss()
        try:
            blob, used_blob = t.TPM2B_ID_OBJECT.unmarshal(credential_blob)
            secret, used_secret = t.TPM2B_ENCRYPTED_SECRET.unmarshal(encrypted_secret)
        except Exception as exc:
            raise KeyProviderError(
                f"the server's activation challenge is malformed: {exc}"
            ) from exc
        if used_blob != len(credential_blob) or used_secret != len(encrypted_secret):
            raise KeyProviderError("the server's activation challenge has trailing bytes")
        with _connect(self._tcti, "activating the credential") as tpm:
            _, ak = self._load_children(tpm, ak=True, key=False)
            ek, ek_public, _ = _load_ek(tpm, self._blobs.ek_kind)
            session = _ek_session(tpm, ek_public)
            try:
                answer = tpm.esapi.activate_credential(
                    ak, ek, blob, secret, session1=tpm.t.ESYS_TR.PASSWORD, session2=session
                )
            except tpm.t.TSS2_Exception as exc:
                raise KeyProviderError(
                    "the TPM refused the activation challenge: it was made for another TPM or "
                    f"attestation key ({exc}); enroll again from this machine"
                ) from exc
        return bytes(answer)


def _sign_loaded(tpm: _Tpm, key: Any, data: bytes) -> bytes:
    """ES256 with a loaded key: SHA-256 on the host, one TPM2_Sign, raw ``r||s``."""
    t = tpm.t
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    scheme = t.TPMT_SIG_SCHEME(scheme=t.TPM2_ALG.NULL)
    signature = tpm.esapi.sign(key, digest.finalize(), scheme, None)
    r = int.from_bytes(bytes(signature.signature.ecdsa.signatureR), "big")
    s = int.from_bytes(bytes(signature.signature.ecdsa.signatureS), "big")
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _tpmt_public(tpm2b_public: bytes) -> bytes:
    """The TPMT_PUBLIC inside a marshaled TPM2B_PUBLIC."""
    size = int.from_bytes(tpm2b_public[:2], "big")
    return tpm2b_public[2 : 2 + size]


def _jwk_from_tpm2b_public(tpm2b_public: bytes) -> dict[str, str]:
    from attest.tpm.public import EccParameters, parse_tpm2b_public

    try:
        public = parse_tpm2b_public(tpm2b_public)
    except Exception as exc:
        raise KeyProviderError(f"TPM key file holds a malformed public area: {exc}") from exc
    key = public.public_key()
    if not isinstance(public.parameters, EccParameters) or not isinstance(
        key, ec.EllipticCurvePublicKey
    ):
        raise KeyProviderError("TPM key file does not hold an ECC P-256 key")
    return public_jwk(key)


def probe_tpm2(tcti: str | None = None) -> ProbeResult:
    """Can a ``tpm2`` key be created and attested here? Never raises; fast."""
    tcti = tcti or DEFAULT_TCTI
    problem = _device_problem(tcti)
    if problem:
        return ProbeResult(False, problem)
    try:
        with _connect(tcti, "probing") as tpm:
            kind = _pick_ek_kind(tpm, None)
    except KeyProviderError as exc:
        return ProbeResult(False, str(exc))
    except Exception as exc:  # a probe reports, it never crashes the CLI
        return ProbeResult(False, f"TPM probe failed: {exc}")
    return ProbeResult(True, f"TPM 2.0 at {tcti} with an {kind} EK certificate")


__all__ = [
    "DEFAULT_TCTI",
    "KEY_FILE_NAME",
    "EkKind",
    "ProbeResult",
    "Tpm2Key",
    "key_file_path",
    "probe_tpm2",
]
