"""Data-parallel training on several GPUs (or CPU processes) through torchrun.

The caller (a Celery worker) stays a plain single process: ``train_distributed``
runs ``torch.distributed.run`` as a subprocess and loads what rank 0 saved, so
no process group, port or CUDA context outlives the call.
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from training.ml.config import TrainConfig
from training.ml.data import PreferencePair, write_pairs_jsonl
from training.ml.ddp_worker import PROGRESS_PREFIX
from training.ml.model import load_reward_model, pooling_of, resolve_device
from training.ml.trainer import TrainProgress, TrainResult

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
# How much of the workers' stderr a failure carries in its message.
STDERR_TAIL_CHARS = 4000


def train_distributed(
    pairs: Sequence[PreferencePair],
    config: TrainConfig,
    *,
    nproc: int,
    output_dir: str | os.PathLike,
    init_path: str | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
) -> TrainResult:
    """``trainer.train_reward_model`` on ``nproc`` data-parallel processes.

    Each process takes one device, ``cuda:<local rank>`` when
    ``config.device`` resolves to CUDA (NCCL; needs ``nproc`` GPUs) else the
    CPU (gloo), and runs every ``nproc``-th batch of each optimizer step, so
    pairs per optimizer step are ``nproc * batch_size *
    gradient_accumulation_steps``: scale the learning rate or batch size to
    taste. Deterministic for a given config, data and ``nproc`` on given
    devices.

    Blocks until training ends. ``progress`` is called in this process, after
    every optimizer step, with rank 0's report (the loss is the mean over all
    ranks' pairs of the step). Rank 0 saves the trained model and tokenizer
    with ``save_pretrained`` into ``output_dir`` (created if missing; files of
    the same names are replaced); the returned TrainResult holds them loaded
    back onto ``config.device`` in eval mode, rank 0's history, and
    ``pairs_per_second`` = pairs (all ranks, all epochs) per second of rank
    0's training loop. ``output_dir`` is a scratch folder: keep a model with
    ``checkpoint.save_checkpoint``.

    Raises ValueError for no pairs, ``nproc`` < 1 or more CUDA processes than
    GPUs; RuntimeError, carrying the tail of the workers' stderr, when
    torchrun or a worker fails.
    """
    if not pairs:
        raise ValueError("cannot train a reward model on zero preference pairs")
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    device = resolve_device(config.device)
    if device.type == "cuda" and nproc > torch.cuda.device_count():
        raise ValueError(f"nproc={nproc} CUDA processes but only {torch.cuda.device_count()} GPU(s)")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="reward-ddp-") as scratch:
        scratch = Path(scratch)
        write_pairs_jsonl(pairs, scratch / "pairs.jsonl")
        (scratch / "config.json").write_text(json.dumps(config.to_dict()), encoding="utf-8")
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "training.ml.ddp_worker",
            "--pairs", str(scratch / "pairs.jsonl"),
            "--config", str(scratch / "config.json"),
            "--output-dir", str(output_dir),
            "--result", str(scratch / "result.json"),
        ]  # fmt: skip
        if init_path is not None:
            command += ["--init-path", str(init_path)]
        _run_workers(command, scratch / "stderr.log", nproc, progress)
        summary = json.loads((scratch / "result.json").read_text(encoding="utf-8"))

    model, tokenizer = load_reward_model(output_dir, device)
    model.eval()
    seconds = summary["seconds"]
    return TrainResult(
        model=model,
        tokenizer=tokenizer,
        history=summary["history"],
        train_pairs=len(pairs),
        seconds=seconds,
        pairs_per_second=len(pairs) * config.num_epochs / seconds if seconds > 0 else 0.0,
        pooling=pooling_of(model),
    )


def _run_workers(
    command: list[str], stderr_path: Path, nproc: int, progress: Callable[[TrainProgress], None] | None
) -> None:
    """Run torchrun, relaying progress lines as they come; raise on failure."""
    environment = dict(os.environ)
    environment["PYTHONUNBUFFERED"] = "1"
    # ``-m training.ml.ddp_worker`` must resolve whatever the caller's cwd.
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + ([environment["PYTHONPATH"]] if environment.get("PYTHONPATH") else [])
    )
    # The launcher would set 1 thread per process and warn; share the cores instead.
    environment.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    # Other output (warnings, prints) is kept, briefly, for the error message.
    other_lines: collections.deque[str] = collections.deque(maxlen=20)
    with open(stderr_path, "w+", encoding="utf-8", errors="replace") as stderr:
        # Its own session, so that the launcher and its workers can be ended as one group.
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
        try:
            assert process.stdout is not None
            for line in process.stdout:
                if line.startswith(PROGRESS_PREFIX):
                    if progress is not None:
                        progress(TrainProgress(**json.loads(line[len(PROGRESS_PREFIX) :])))
                else:
                    other_lines.append(line.rstrip("\n"))
            returncode = process.wait()
        except BaseException:
            # Our own callback failed, or we were interrupted (a Celery time
            # limit): leave no workers behind. SIGTERM lets torchrun stop them.
            _stop(process)
            raise
        if returncode != 0:
            stderr.seek(0)
            text = stderr.read()
            cause = _last_exception_line(text)
            stdout_tail = "\n".join(other_lines)
            raise RuntimeError(
                f"distributed training failed (torchrun exit status {returncode})"
                + (f": {cause}" if cause else "")
                + f"\nstderr tail:\n{text[-STDERR_TAIL_CHARS:]}"
                + (f"\nstdout tail:\n{stdout_tail}" if stdout_tail else "")
            )


_EXCEPTION_LINE = re.compile(r"^\s*((?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception)\b.*)$", re.MULTILINE)


def _last_exception_line(stderr_text: str) -> str | None:
    """The last "SomeError: message" line of a worker's traceback, the likeliest cause."""
    # torchrun's own ChildFailedError only says that a worker failed.
    matches = [line for line in _EXCEPTION_LINE.findall(stderr_text) if "ChildFailedError" not in line]
    return matches[-1].strip() if matches else None


def _stop(process: subprocess.Popen, grace_s: float = 30.0) -> None:
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
