"""Keep the memory one training step frees for the next, instead of handing it back to the kernel.

glibc's malloc gives the top of its heap back to the kernel once more than
``M_TRIM_THRESHOLD`` of it is free (64 MiB at most, as glibc adjusts it). A
training step frees its activations, megabytes each, at the end of backward,
the heap top goes back, and the next step asks for the same sizes again:
every page is then faulted in and zeroed by the kernel once more. On 2 CPU
cores a MiniLM step took thousands of such faults. Within ``retained_heap``
the heap keeps what it frees; on leaving, the thresholds go back to the values
glibc's own adjustment settles at and the free memory is trimmed once, so a
long-lived worker does not hold a run's peak.

Only glibc has these knobs; elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
from collections.abc import Iterator

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
# The ceilings of glibc's dynamic adjustment on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX,
# and twice it for trimming): where it settles once a program frees large blocks.
_MMAP_THRESHOLD = 32 * 1024 * 1024
_SETTLED_TRIM_THRESHOLD = 2 * _MMAP_THRESHOLD
_NEVER_TRIM = 2**31 - 1  # mallopt takes an int


@contextlib.contextmanager
def retained_heap() -> Iterator[bool]:
    """Within the block, freed memory stays in the heap for reuse; yields whether glibc obliged."""
    libc = _glibc()
    if libc is None or not libc.mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM):
        yield False
        return
    libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    try:
        yield True
    finally:
        libc.mallopt(_M_TRIM_THRESHOLD, _SETTLED_TRIM_THRESHOLD)
        libc.malloc_trim(0)


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        # glibc alone has both; musl has neither mallopt's effect nor malloc_trim.
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        libc.gnu_get_libc_version  # noqa: B018 - raises AttributeError outside glibc
    except (OSError, AttributeError):
        return None
    return libc
