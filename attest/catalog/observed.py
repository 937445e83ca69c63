"""Verifier-observed fields: what the verifier records about how a token is used.

Nothing here is collected on the machine or sent by the agent (these ids are not in
``CATALOG``, so the agent cannot send them and the verifier refuses them in evidence). The
verifier observes them at forward auth; a manifest lists them under ``observed`` with purpose
and retention, the agent shows them at consent and ``whoami`` shows the values held.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from attest.catalog import FieldId, Sensitivity
from attest.errors import FormatError


@dataclass(frozen=True)
class ObservedField:
    """One verifier-observed field: what it is, how the verifier gets it."""

    id: FieldId
    type_name: str
    description: str
    how: str
    sensitivity: Sensitivity
    example: object


OBSERVED: Mapping[FieldId, ObservedField] = {
    f.id: f
    for f in (
        ObservedField(
            id=FieldId("usage.requests"),
            type_name="count per token per minute",
            description="How many requests each access token made through the gateway, per minute.",
            how="counted by the verifier at forward auth (/v1/authz)",
            sensitivity=Sensitivity.LOW,
            example={"minute": 1_800_000_000 // 60, "requests": 42},
        ),
        ObservedField(
            id=FieldId("usage.client_networks"),
            type_name="list of networks per token",
            description="The client networks each access token was used from: the /24 "
            "(IPv4) or /56 (IPv6) of the address the gateway forwarded, never the address.",
            how="derived by the verifier from the gateway's trusted forwarded address",
            sensitivity=Sensitivity.MEDIUM,
            example=["198.51.100.0/24"],
        ),
    )
}


def observed_field(field_id: str) -> ObservedField:
    """The entry for ``field_id``; FormatError names an unknown one."""
    try:
        return OBSERVED[FieldId(field_id)]
    except KeyError:
        known = ", ".join(OBSERVED)
        raise FormatError(f"{field_id!r} is not a verifier-observed field ({known})") from None


__all__ = ["OBSERVED", "ObservedField", "observed_field"]
