"""Review decisions in a big project: what the Results page's reads cost after each reject or revert.

Builds, on a fresh PostgreSQL database, a pairwise project with N settled labels (3 per item,
30 annotators, HH-RLHF dialogues: ``benchmarks.export.build_project``, COPY, tallies counted
once). A reviewer then makes D decisions through ``annotation.review.label_review`` (reject a
random label, and every third decision revert an earlier rejection), each followed by the two
tally reads of the Results page (``annotation.quality.project_annotator_quality`` and
``training.leaderboard.model_comparison_counts``), timed apart.

The baseline, in the same run: a full rebuild of the project's tallies
(``annotation.tallies.label_tallies_rebuild``), which the first read after every decision ran
before decisions changed the tallies in place (they marked them stale).

PASS when every read after a decision takes under ``--target-ms`` (100 ms, the Results calls'
p99 target of ``benchmarks/annotators.py``), and the final reads equal the full computations
from every label.

    .venv/bin/python benchmarks/review_tallies.py                       # N = 300,000
    .venv/bin/python benchmarks/review_tallies.py --labels 1000000 --decisions 30

Needs PostgreSQL at 127.0.0.1:5432 (DATABASE_URL's server); creates and drops the database
``rlhf_bench_review`` (``--keep`` leaves it).
"""
import argparse
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_DB = "rlhf_bench_review"
sys.path.insert(0, str(REPO))

from benchmarks.support import bench_environment, percentile, recreate_database, server_url_from_env  # noqa: E402


def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


def build(labels: int) -> tuple[int, float]:
    """The project (its id) and the seconds COPY and the tally count took."""
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection

    from benchmarks.export import ANNOTATORS, build_project, load_dialogues

    call_command("migrate", verbosity=0)
    User.objects.bulk_create([User(username=f"annotator{index}", password="!") for index in range(ANNOTATORS)])
    annotator_ids = list(User.objects.order_by("id").values_list("id", flat=True))
    started = time.perf_counter()
    project_id = build_project(name="Review benchmark", labels=labels, annotator_ids=annotator_ids, dialogues=load_dialogues())
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return project_id, seconds


def results_reads(project) -> tuple[float, float, tuple]:
    """The Results page's two tally reads: milliseconds each, and what they returned."""
    from annotation.quality import project_annotator_quality
    from training.leaderboard import model_comparison_counts

    quality_ms, quality = timed(lambda: project_annotator_quality(project_id=project.id))
    models_ms, models = timed(lambda: model_comparison_counts(project))
    return quality_ms, models_ms, (quality, models)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=int, default=300_000, help="labels in the project")
    parser.add_argument("--decisions", type=int, default=30, help="review decisions, each followed by the reads")
    parser.add_argument("--target-ms", type=float, default=100.0, help="every read after a decision must take less")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help=f"leave the database {BENCH_DB} behind")
    args = parser.parse_args()
    if args.labels < 30 or args.decisions < 1:
        raise SystemExit("--labels: at least 30; --decisions: at least 1.")

    database_url = recreate_database(server_url_from_env(), BENCH_DB)
    os.environ.update(bench_environment(database_url))
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection

    from annotation.models import Label, Project
    from annotation.quality import _project_annotator_quality_from_labels
    from annotation.review import label_review
    from annotation.tallies import label_tallies_rebuild
    from training.leaderboard import _model_comparison_counts_from_labels

    try:
        project_id, built_seconds = build(args.labels)
        project = Project.objects.get(id=project_id)
        reviewer = User.objects.create(username="reviewer", password="!")
        project.reviewers.add(reviewer)
        print(f"Built {args.labels:,} settled labels (3 per item, 30 annotators, HH-RLHF) with COPY and counted "
              f"their tallies in {built_seconds:.1f} s. PostgreSQL, {os.cpu_count()} CPU cores.", flush=True)

        results_reads(project)  # this process's first read: its cache of recent rows is cold
        rebuild_ms, _ = timed(lambda: label_tallies_rebuild(project=project))
        print(f"baseline: a full rebuild of the project's two tallies {rebuild_ms / 1000:.2f} s "
              f"(what the first read after each decision ran before)", flush=True)

        rng = random.Random(args.seed)
        top = Label.objects.filter(item__project=project).order_by("-id").values_list("id", flat=True).first()
        bottom = Label.objects.filter(item__project=project).order_by("id").values_list("id", flat=True).first()
        rejected: list[int] = []
        decision_ms, quality_ms, models_ms = [], [], []
        print(f"\n{'#':>3} {'decision':<8} {'label':>9} {'decide ms':>10} {'quality ms':>11} {'models ms':>10}")
        for number in range(1, args.decisions + 1):
            if number % 3 == 0 and rejected:
                decision, label_id = "revert", rejected.pop(rng.randrange(len(rejected)))
            else:
                decision, label_id = "reject", rng.randint(bottom, top)
                rejected.append(label_id)
            spent, _ = timed(lambda: label_review(label_id=label_id, reviewer=reviewer, decision=decision, reason="benchmark"))
            quality, models, _ = results_reads(project)
            decision_ms.append(spent)
            quality_ms.append(quality)
            models_ms.append(models)
            print(f"{number:>3} {decision:<8} {label_id:>9} {spent:>10.1f} {quality:>11.1f} {models:>10.1f}", flush=True)

        _, _, (quality, models) = results_reads(project)
        exact = quality == _project_annotator_quality_from_labels(project_id=project.id) and (
            models == _model_comparison_counts_from_labels(project)
        )
        worst_read = max(max(quality_ms), max(models_ms))
        print(f"\ndecision: p50 {percentile(decision_ms, 0.5):.1f} ms, max {max(decision_ms):.1f} ms; "
              f"reads after it: quality p50 {percentile(quality_ms, 0.5):.1f} ms, max {max(quality_ms):.1f} ms; "
              f"model comparisons p50 {percentile(models_ms, 0.5):.1f} ms, max {max(models_ms):.1f} ms")
        print(f"the tallies equal the full computations from every label: {exact}")
        passed = exact and worst_read < args.target_ms
        print(f"{'PASS' if passed else 'FAIL'}: the slowest read after a decision {worst_read:.1f} ms "
              f"(target < {args.target_ms:.0f} ms) at {args.labels:,} labels; the rebuild each one used to cost: "
              f"{rebuild_ms / 1000:.2f} s ({rebuild_ms / worst_read:,.0f}x)")
    finally:
        connection.close()
        if not args.keep:
            recreate_database(server_url_from_env(), BENCH_DB, drop_only=True)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
