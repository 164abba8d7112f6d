"""The training loop keeps the memory a step frees for the next one (glibc only)."""

import subprocess
import sys
from pathlib import Path

import pytest

from training.ml.memory import _glibc

# A process that allocates 100 MiB in 20 MiB blocks, frees them, and does so three
# times, printing the page faults of the third round.
ROUNDS = """
import contextlib, resource, sys, torch
from training.ml.memory import retained_heap
block = retained_heap() if sys.argv[1] == "retained" else contextlib.nullcontext()
with block:
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        blocks = [torch.ones(5 * 1024 * 1024) for _ in range(5)]
        del blocks
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(faults)
"""


def third_round_faults(mode):
    repository = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, check=True, cwd=repository
    )
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(_glibc() is None, reason="the heap thresholds are glibc's")
def test_memory_freed_in_one_step_is_reused_by_the_next_without_page_faults():
    # 100 MiB of fresh pages is 25,600 faults; glibc by default hands the freed
    # heap top back and faults it all in again.
    assert third_round_faults("plain") > 10_000
    assert third_round_faults("retained") < 1_000
