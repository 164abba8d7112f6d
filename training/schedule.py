"""When a project's nightly retrain is due: pure time arithmetic, no database.

Times are wall-clock times in the server's TIME_ZONE (what admins type into the
policy form), so "02:00" stays 02:00 across daylight-saving changes.
"""
import datetime
from zoneinfo import ZoneInfo


def next_occurrence(at: datetime.time, *, after: datetime.datetime, zone: ZoneInfo) -> datetime.datetime:
    """The first moment strictly after ``after`` whose wall-clock time in ``zone`` is ``at``.

    ``after`` must be aware. A time skipped by a daylight-saving jump falls on the
    shifted instant (``fold=0``), so a nightly run is never skipped.
    """
    local = after.astimezone(zone)
    candidate = datetime.datetime.combine(local.date(), at, tzinfo=zone)
    if candidate <= local:
        candidate = datetime.datetime.combine(local.date() + datetime.timedelta(days=1), at, tzinfo=zone)
    return candidate
