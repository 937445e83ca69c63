"""The agent's local state: one owner-only directory (platformdirs, or --home / ENVATTEST_HOME).

Files: ``agent.json`` (server, device id, key provider, key class), ``consent.json``, the
device key, ``token.json`` (cached access token) and ``submissions.jsonl`` (what was sent).
Every write is atomic, so a full disk or a crash never corrupts consent or key.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent.errors import NotEnrolledError, StateError
from agent.tokencache import INACTIVE_FILE
from attest.privatefile import append_private_line, ensure_private_dir, write_private_atomic

HOME_ENV = "ENVATTEST_HOME"


def resolve_home(explicit: str | None, env: dict[str, str] | None = None) -> Path:
    """``--home`` wins, then ``ENVATTEST_HOME``, then the platform's user data directory."""
    environ = os.environ if env is None else env
    if explicit:
        return Path(explicit).expanduser()
    if environ.get(HOME_ENV):
        return Path(environ[HOME_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("envattest", appauthor=False))


@dataclass(frozen=True)
class Enrollment:
    """What ``init`` recorded."""

    server: str
    device_id: str
    key_provider: str
    key_class: str
    enrolled_at: int
    ca_file: str | None = None
    tcti: str | None = None


@dataclass(frozen=True)
class ConsentRecord:
    """The user's answer to one exact manifest."""

    server: str
    manifest_sha256: str
    granted_at: int
    fields: tuple[str, ...]
    revoked_at: int | None = None

    @property
    def active(self) -> bool:
        """Granted and not revoked."""
        return self.revoked_at is None


class AgentHome:
    """Paths and atomic reads/writes of the agent's state."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def enrollment_path(self) -> Path:
        """agent.json."""
        return self.root / "agent.json"

    @property
    def consent_path(self) -> Path:
        """consent.json."""
        return self.root / "consent.json"

    @property
    def key_path(self) -> Path:
        """Software key PEM."""
        return self.root / "device-key.pem"

    @property
    def tpm_dir(self) -> Path:
        """TPM key blobs."""
        return self.root / "tpm"

    @property
    def token_path(self) -> Path:
        """Cached access token."""
        return self.root / "token.json"

    @property
    def log_path(self) -> Path:
        """Append-only record of every submission."""
        return self.root / "submissions.jsonl"

    def owned_paths(self) -> list[Path]:
        """Every file or directory the agent creates in its home (``forget`` removes these)."""
        from agent.devicekey import SE_KEY_FILE

        return [
            self.enrollment_path,
            self.consent_path,
            self.key_path,
            self.root / SE_KEY_FILE,
            self.tpm_dir,
            self.token_path,
            self.log_path,
            self.inactive_path,
        ]

    def ensure(self) -> None:
        """Create the directory, owner-only."""
        ensure_private_dir(self.root)

    def _read_json(self, path: Path) -> dict[str, Any] | None:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StateError(
                f"{path} is unreadable ({exc}); run 'envattest forget --local' and enroll again"
            ) from exc
        if not isinstance(doc, dict):
            raise StateError(f"{path} is not a JSON object; run 'envattest forget --local'")
        return doc

    def _write_json(self, path: Path, doc: dict[str, Any]) -> None:
        try:
            write_private_atomic(path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
        except OSError as exc:
            raise StateError(
                f"cannot write {path} ({exc.strerror or exc}); free disk space or fix "
                "permissions — the previous state is intact"
            ) from exc

    def enrollment(self) -> Enrollment:
        """The enrollment, or NotEnrolledError."""
        doc = self._read_json(self.enrollment_path)
        if doc is None:
            raise NotEnrolledError(
                f"not enrolled (no {self.enrollment_path}); run 'envattest init --server URL "
                "--enroll-token TOKEN'"
            )
        try:
            return Enrollment(**doc)
        except TypeError as exc:
            raise StateError(f"{self.enrollment_path} is malformed; run 'envattest init'") from exc

    def save_enrollment(self, enrollment: Enrollment) -> None:
        """Write agent.json."""
        self._write_json(self.enrollment_path, asdict(enrollment))

    def consent(self) -> ConsentRecord | None:
        """The stored consent, if any."""
        doc = self._read_json(self.consent_path)
        if doc is None:
            return None
        try:
            return ConsentRecord(**{**doc, "fields": tuple(doc.get("fields", ()))})
        except TypeError as exc:
            raise StateError(f"{self.consent_path} is malformed; run 'envattest consent'") from exc

    def save_consent(self, record: ConsentRecord) -> None:
        """Write consent.json."""
        doc = asdict(record)
        doc["fields"] = list(record.fields)
        self._write_json(self.consent_path, doc)

    def save_token(self, token: str, expires_at: int) -> None:
        """Cache an access token (read by the fast path in tokencache)."""
        self._write_json(self.token_path, {"access_token": token, "expires_at": expires_at})

    def drop_token(self) -> None:
        """Forget the cached token."""
        self.token_path.unlink(missing_ok=True)

    @property
    def inactive_path(self) -> Path:
        """Written when the verifier stops accepting this device."""
        return self.root / INACTIVE_FILE

    def mark_inactive(self, detail: str, *, at: int) -> None:
        """Remember that the verifier refused this device, and drop its cached token."""
        self.drop_token()
        self._write_json(self.inactive_path, {"at": at, "detail": detail})

    def inactive_since(self) -> int | None:
        """When the verifier was found to refuse this device, if it was."""
        doc = self._read_json(self.inactive_path)
        return None if doc is None else int(doc.get("at", 0))

    def append_log(self, entry: dict[str, Any]) -> None:
        """Append one submission record."""
        try:
            append_private_line(self.log_path, json.dumps(entry, sort_keys=True).encode())
        except OSError as exc:
            raise StateError(f"cannot append to {self.log_path} ({exc})") from exc

    def read_log(self) -> list[dict[str, Any]]:
        """Every submission record, oldest first (a torn last line is skipped)."""
        try:
            lines = self.log_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        entries = []
        for line in lines:
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
        return entries
