"""The per-run secret that keeps other local users off the proxy.

Anything on the machine can open a loopback port, so the port alone proves nothing. Each run
draws a fresh secret; the wrapper hands it to the tool inside the base URL
(``http://127.0.0.1:PORT/<secret>``) or the tool sends it in ``X-Envattest-Proxy-Secret``.
Environment variables are readable only by the same user (``/proc/PID/environ`` is 0400), and
the secret never appears on a command line, where ``ps`` would show it to everyone.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

SECRET_HEADER = "x-envattest-proxy-secret"  # noqa: S105 (a header name)
_SECRET_BYTES = 32


@dataclass(frozen=True)
class RunSecret:
    """One run's secret; ``value`` is URL-safe base64 text."""

    value: str

    @classmethod
    def generate(cls, random_text: Callable[[int], str] = secrets.token_urlsafe) -> RunSecret:
        """A fresh secret of 256 bits."""
        return cls(random_text(_SECRET_BYTES))

    @property
    def path_prefix(self) -> str:
        """The path prefix a tool's base URL carries: ``/<secret>``."""
        return f"/{self.value}"

    def admit(self, target: bytes, header_value: bytes | None) -> bytes | None:
        """The request target with the secret removed, or None when the secret is absent.

        The secret may be the first path segment or the ``X-Envattest-Proxy-Secret`` header
        (raw bytes from the wire); comparisons take constant time.
        """
        expected = self.value.encode("ascii")
        if header_value is not None and hmac.compare_digest(header_value, expected):
            return target
        prefix = b"/" + expected
        head, rest = target[: len(prefix)], target[len(prefix) :]
        if hmac.compare_digest(head, prefix) and rest[:1] in (b"", b"/", b"?"):
            return rest if rest.startswith(b"/") else b"/" + rest
        return None
