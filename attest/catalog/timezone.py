"""Timezone family: where the machine's clock says it is. Never locale or location."""

from __future__ import annotations

from attest.catalog import Family, Field, FieldId, Sensitivity

FIELDS = (
    Field(
        id=FieldId("timezone.iana"),
        family=Family.TIMEZONE,
        value_type=str | None,
        type_name="string | null",
        description="IANA time zone name of the system clock (tzlocal); null when unknown.",
        sensitivity=Sensitivity.MEDIUM,
        example="Europe/Berlin",
        never="locale, language, geolocation",
    ),
    Field(
        id=FieldId("timezone.source"),
        family=Family.TIMEZONE,
        value_type=str,
        type_name="string",
        description="Where the zone name came from: TZ, /etc/localtime, /etc/timezone, "
        "/etc/sysconfig/clock, /etc/conf.d/clock, timedatectl, registry, systemsetup or "
        "unknown.",
        sensitivity=Sensitivity.LOW,
        example="/etc/localtime",
    ),
    Field(
        id=FieldId("timezone.utc_offset_minutes"),
        family=Family.TIMEZONE,
        value_type=int,
        type_name="integer",
        description="Current offset from UTC in minutes, DST included.",
        sensitivity=Sensitivity.MEDIUM,
        example=60,
    ),
    Field(
        id=FieldId("timezone.dst"),
        family=Family.TIMEZONE,
        value_type=bool | None,
        type_name="boolean | null",
        description="Whether daylight saving time is in effect now; null when unknown.",
        sensitivity=Sensitivity.LOW,
        example=False,
    ),
)
