"""One rank of a data-parallel training run; started by torchrun, never imported.

    python -m torch.distributed.run --standalone --nproc_per_node=N \\
        -m training.ml.ddp_worker --pairs P.jsonl --config C.json --output-dir D --result R.json

``training.ml.distributed.train_distributed`` builds that command; see it for
the contract. Every rank loads the same model (same seed, same head), encodes
all pairs and computes the same batch order; ``trainer.run_training_loop``
wraps the model in DistributedDataParallel and gives each rank its share of
every step. Rank 0 alone prints progress (one ``PROGRESS_PREFIX`` + JSON line
per optimizer step on stdout), saves the model and tokenizer with
``save_pretrained`` into ``--output-dir``, and writes the loop's history and
timing to ``--result``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import record

from training.ml.config import TrainConfig
from training.ml.data import encode_pairs, read_pairs_jsonl
from training.ml.model import resolve_device
from training.ml.pooling import head_index
from training.ml.trainer import TrainProgress, prepare_model, run_training_loop

# Marks rank 0's progress lines among whatever else reaches stdout.
PROGRESS_PREFIX = "@@reward-train-progress "


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="one rank of data-parallel reward-model training")
    parser.add_argument("--pairs", type=Path, required=True, help="JSONL of PreferencePair dicts")
    parser.add_argument("--config", type=Path, required=True, help="JSON of TrainConfig.to_dict()")
    parser.add_argument("--output-dir", type=Path, required=True, help="rank 0 saves the model here")
    parser.add_argument("--result", type=Path, required=True, help="rank 0 writes history and timing here")
    parser.add_argument("--init-path", default=None, help="checkpoint to warm-start from")
    return parser.parse_args(argv)


@record  # a failing rank's traceback reaches torchrun's error summary on stderr
def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    config = TrainConfig.from_dict(json.loads(args.config.read_text(encoding="utf-8")))
    pairs = read_pairs_jsonl(args.pairs)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])

    device = resolve_device(config.device)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        model, tokenizer = prepare_model(config, device, init_path=args.init_path)
        encoded = encode_pairs(tokenizer, pairs, config.max_length, head_index(model))

        def report(progress: TrainProgress) -> None:
            print(PROGRESS_PREFIX + json.dumps(dataclasses.asdict(progress)), flush=True)

        history, seconds = run_training_loop(
            model,
            tokenizer,
            encoded,
            config,
            device,
            rank=rank,
            world_size=world_size,
            progress=report if rank == 0 else None,
        )
        if rank == 0:
            model.save_pretrained(args.output_dir)
            tokenizer.save_pretrained(args.output_dir)
            result = {"history": history, "seconds": seconds, "train_pairs": len(pairs), "world_size": world_size}
            args.result.write_text(json.dumps(result), encoding="utf-8")
        # No rank exits (tearing the group down) before rank 0 has saved.
        dist.barrier(device_ids=[device.index] if device.type == "cuda" else None)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
