"""The DST layer: gaps and folds in the zones that bite, under every policy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hora.errors import InvalidTrigger
from hora.triggers.dst import DstFold, DstGap, resolve_local, zone


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# (zone, local time in the gap, first_valid, shift)
GAPS = [
    ("America/New_York", datetime(2027, 3, 14, 2, 30), utc(2027, 3, 14, 7, 0),
     utc(2027, 3, 14, 7, 30)),
    ("Europe/London", datetime(2027, 3, 28, 1, 30), utc(2027, 3, 28, 1, 0),
     utc(2027, 3, 28, 1, 30)),
    # Lord Howe jumps 30 minutes, 02:00 -> 02:30 local (UTC+10:30 -> +11)
    ("Australia/Lord_Howe", datetime(2027, 10, 3, 2, 15), utc(2027, 10, 2, 15, 30),
     utc(2027, 10, 2, 15, 45)),
    # southern hemisphere: Sydney springs forward in October, 02:00 -> 03:00
    ("Australia/Sydney", datetime(2027, 10, 3, 2, 30), utc(2027, 10, 2, 16, 0),
     utc(2027, 10, 2, 16, 30)),
]

# (zone, local time in the fold, first instant, last instant)
FOLDS = [
    ("America/New_York", datetime(2027, 11, 7, 1, 30), utc(2027, 11, 7, 5, 30),
     utc(2027, 11, 7, 6, 30)),
    ("Europe/London", datetime(2027, 10, 31, 1, 30), utc(2027, 10, 31, 0, 30),
     utc(2027, 10, 31, 1, 30)),
    ("Australia/Lord_Howe", datetime(2027, 4, 4, 1, 45), utc(2027, 4, 3, 14, 45),
     utc(2027, 4, 3, 15, 15)),
    ("Australia/Sydney", datetime(2027, 4, 4, 2, 30), utc(2027, 4, 3, 15, 30),
     utc(2027, 4, 3, 16, 30)),
]


@pytest.mark.parametrize("name,local,first_valid,shifted", GAPS)
def test_gaps(name: str, local: datetime, first_valid: datetime, shifted: datetime) -> None:
    tz = zone(name)
    assert resolve_local(local, tz, DstGap.FIRST_VALID, DstFold.FIRST)[0] == [first_valid]
    assert resolve_local(local, tz, DstGap.SHIFT, DstFold.FIRST)[0] == [shifted]
    instants, note = resolve_local(local, tz, DstGap.SKIP, DstFold.FIRST)
    assert instants == [] and note is not None and "skipped" in note


@pytest.mark.parametrize("name,local,first,last", FOLDS)
def test_folds(name: str, local: datetime, first: datetime, last: datetime) -> None:
    tz = zone(name)
    assert resolve_local(local, tz, DstGap.SHIFT, DstFold.FIRST)[0] == [first]
    assert resolve_local(local, tz, DstGap.SHIFT, DstFold.LAST)[0] == [last]
    assert resolve_local(local, tz, DstGap.SHIFT, DstFold.BOTH)[0] == [first, last]


def test_ordinary_times_and_zones_without_dst_are_untouched() -> None:
    kolkata = zone("Asia/Kolkata")
    assert resolve_local(datetime(2027, 3, 14, 2, 30), kolkata, DstGap.SKIP, DstFold.BOTH) == (
        [utc(2027, 3, 13, 21, 0)], None)
    ny = zone("America/New_York")
    assert resolve_local(datetime(2027, 7, 1, 9, 0), ny, DstGap.SKIP, DstFold.BOTH) == (
        [utc(2027, 7, 1, 13, 0)], None)


def test_unknown_zone_is_a_clear_error() -> None:
    with pytest.raises(InvalidTrigger, match="unknown time zone 'Mars/Olympus'"):
        zone("Mars/Olympus")
