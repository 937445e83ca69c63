"""envattest shared library: evidence format, field catalog, JOSE helpers, key providers."""

from __future__ import annotations

__version__ = "0.1.0"

EAT_PROFILE = "tag:envattest.dev,2026:eat-v1"
SWNAME = "envattest"

__all__ = ["EAT_PROFILE", "SWNAME", "__version__"]
