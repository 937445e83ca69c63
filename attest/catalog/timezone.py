"""Timezone family: where the machine's clock says it is. Never locale or location."""

from __future__ import annotations

from attest.catalog import Family, Field, FieldId, Sensitivity
from attest.catalog.values import UtcOffsetMinutes, ZoneName, ZoneSource

FIELDS = (
    Field(
        id=FieldId("timezone.iana"),
        family=Family.TIMEZONE,
        value_type=ZoneName | None,
        type_name="string | null",
        description="IANA time zone name of the system clock, canonical in tzdata (a "
        "backward link such as Asia/Calcutta is sent as Asia/Kolkata); null when unknown.",
        sensitivity=Sensitivity.MEDIUM,
        example="Asia/Tokyo",  # no DST: consistent with the offset example all year
        never="locale, language, geolocation",
    ),
    Field(
        id=FieldId("timezone.source"),
        family=Family.TIMEZONE,
        value_type=ZoneSource,
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
        value_type=UtcOffsetMinutes,
        type_name="integer",
        description="The system clock's current offset from UTC in minutes, DST included; "
        "the verifier checks it against the zone at iat.",
        sensitivity=Sensitivity.MEDIUM,
        example=540,
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
