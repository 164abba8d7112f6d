"""benchmarks/score.py: when its paths count as scoring the same thing, on CPU and under bf16."""
from benchmarks.score import scores_agree


def compared(device: str, differences: dict[str, float], correlations: dict[str, float]) -> dict:
    return {"device": device, "score_std": 0.012, "max_abs_diff_vs_pipeline_b1": differences,
            "correlation_vs_pipeline_b1": correlations}


def test_fp32_paths_must_agree_to_float_rounding():
    assert scores_agree(compared("cpu", {"ours": 5e-8, "pipeline-b32": 4e-8}, {"ours": 1.0, "pipeline-b32": 1.0}))
    # A bf16-sized difference on the CPU, where everything is fp32, is a different computation.
    assert not scores_agree(compared("cpu", {"ours": 2e-3, "pipeline-b32": 4e-8}, {"ours": 0.9999, "pipeline-b32": 1.0}))


def test_bf16_paths_must_agree_to_their_precision():
    # On CUDA ours runs under bf16 autocast: measured on the CPU's autocast, 2.6e-4 and r 0.99997
    # against a spread of 0.012 for this head.
    close = {"ours": 2.6e-4, "pipeline-b32": 3e-7, "pipeline-b32-bf16": 5e-4}
    assert scores_agree(compared("cuda", close, {"ours": 0.99997, "pipeline-b32": 1.0, "pipeline-b32-bf16": 0.9999}))
    assert not scores_agree(compared("cuda", close, {"ours": 0.99, "pipeline-b32": 1.0, "pipeline-b32-bf16": 0.9999}))
    off_by_a_spread = {**close, "ours": 0.012}
    assert not scores_agree(compared("cuda", off_by_a_spread, {"ours": 0.9999, "pipeline-b32": 1.0,
                                                               "pipeline-b32-bf16": 0.9999}))
    # The fp32 pipeline on the GPU is still held to float rounding.
    assert not scores_agree(compared("cuda", {**close, "pipeline-b32": 2e-3},
                                     {"ours": 0.99997, "pipeline-b32": 0.9999, "pipeline-b32-bf16": 0.9999}))
