"""The training loop keeps the memory a step frees for the next one, and gives it back after (glibc only)."""

import subprocess
import sys
from pathlib import Path

import pytest

from training.ml.memory import _glibc

# A fresh process that allocates 100 MiB in 20 MiB blocks (a step's activations) and frees
# them, printing its resident MiB before, after the frees, and after the block.
STEPS = """
import contextlib, os, sys, torch
from training.ml.memory import retained_heap

def resident_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

block = retained_heap() if sys.argv[1] == "retained" else contextlib.nullcontext()
before = resident_mib()
with block:
    blocks = [torch.ones(5 * 1024 * 1024) for _ in range(5)]
    del blocks
    freed = resident_mib()
print(before, freed, resident_mib())
"""


def resident_mib(mode):
    """(before, after the frees, after the block) resident MiB of a process that runs STEPS."""
    repository = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", STEPS, mode], capture_output=True, text=True, check=True, cwd=repository
    )
    return tuple(float(value) for value in done.stdout.split()[-3:])


@pytest.mark.skipif(_glibc() is None, reason="the heap thresholds are glibc's")
def test_memory_freed_in_a_step_stays_for_the_next_and_goes_back_when_the_loop_ends():
    before, freed, after = resident_mib("retained")
    assert freed - before > 90  # the 100 MiB came from the heap and stay there for the next step
    assert after - before < 20  # trimmed once the block ended


@pytest.mark.skipif(_glibc() is None, reason="the heap thresholds are glibc's")
def test_without_it_glibc_maps_such_blocks_afresh_and_hands_them_straight_back():
    before, freed, _ = resident_mib("plain")
    assert freed - before < 20  # so the next step's blocks fault every page in again
