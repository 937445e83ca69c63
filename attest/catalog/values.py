"""Wire shapes of catalog values. The server validates every received signal against these."""

from __future__ import annotations

from typing import Literal

# pydantic (server side) needs typing_extensions.TypedDict before Python 3.12.
from typing_extensions import TypedDict

Classification = Literal["official", "localhost", "private-network", "custom"]


class ProxyEndpoint(TypedDict):
    """A proxy reduced to where traffic goes: never its credentials, path or query."""

    source: str
    scheme: str
    host: str
    port: int | None
    has_credentials: bool


class BaseUrl(TypedDict):
    """An API base URL reduced to provider and destination host."""

    source: str
    provider: str
    scheme: str
    host: str
    port: int | None
    classification: Classification


class TunnelInterface(TypedDict):
    """A network interface whose name marks it as a tunnel or VPN."""

    name: str
    kind: str


class SourceError(TypedDict):
    """A source that could not be read: its name and an error code, never its contents."""

    source: str
    error: str
