"""Time-sortable identifiers (UUIDv7, RFC 9562).

Ids sort by creation time as plain strings, so keyset pagination and "newest first" need
no extra column, and b-tree inserts stay at the right-hand edge of the index.
"""

from __future__ import annotations

import os
import random
import threading
import time

_lock = threading.Lock()
_last_ms = 0
_counter = 0
# Not for secrets: uniqueness comes from the time and the per-process counter; the random
# part only keeps two processes apart, so a fast generator seeded from the OS is enough.
_rng = random.Random(os.urandom(16))


def _reseed() -> None:
    _rng.seed(os.urandom(16))  # a forked child must not repeat its parent's sequence


os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """A UUIDv7 string; strictly increasing within this process, even inside one millisecond."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            # Same (or earlier, if the wall clock stepped back) millisecond: keep order by
            # counting in the 12-bit rand_a field, borrowing the next millisecond if it fills.
            _counter += 1
            if _counter > 0xFFF:
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        else:
            _last_ms = ms
            _counter = _rng.getrandbits(11)  # leave headroom for the counter
        counter = _counter
        rand_b = _rng.getrandbits(62)
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
