"""The label browser's set filters in a big project while labels arrive: a page's cost after each change.

Builds, on a fresh PostgreSQL database, ``benchmarks/review_tallies.py``'s pairwise project with N
labels (3 per item, 30 annotators, HH-RLHF dialogues, COPY), recounts its progress rows, and
imports 1,000 more items for new labels. Then C changes, each followed by the first page (50 rows)
of the two filters that judge every label of an item: the label browser's ``disagreement``
(labels against their item's majority, ``annotation.review``) and the Items tab's
``agreement_below`` 0.75 (``annotation.review_items``). Two of three changes are three new
labels (``assignment_claim_next`` + ``label_submit`` by annotators of the project), the third a
review decision (reject a random label; every other time revert an earlier rejection).

Each change leaves the kept answers (``annotation.kept_sets``) to be brought up to date from the
items it touched. The baseline, in the same run: each filter's full read of every ranking, what
every page after a change cost before (the answer was kept only while nothing changed). At the
end the kept answers must equal full reads.

PASS when every page after a change takes under ``--target-ms`` (100 ms, the Results calls' p99
target of ``benchmarks/annotators.py``) and the answers are exact.

    .venv/bin/python benchmarks/review_filters.py                       # N = 300,000
    .venv/bin/python benchmarks/review_filters.py --labels 1000000

Needs PostgreSQL at 127.0.0.1:5432 (DATABASE_URL's server); creates and drops the database
``rlhf_bench_review_filters`` (``--keep`` leaves it).
"""
import argparse
import os
import random
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_DB = "rlhf_bench_review_filters"
sys.path.insert(0, str(REPO))

from benchmarks.annotators import freeze_client_heap  # noqa: E402
from benchmarks.review_tallies import build as build_settled, timed  # noqa: E402
from benchmarks.support import bench_environment, percentile, recreate_database, server_url_from_env  # noqa: E402

THRESHOLD = 0.75
PAGE = 50
NEW_ITEMS = 1000


def build(labels: int) -> tuple[int, float]:
    """``review_tallies``' project (its id), its progress rows recounted and the new items imported; seconds taken."""
    from django.db import connection, transaction

    from annotation.models import Project
    from annotation.progress import progress_recount
    from annotation.services import project_import_jsonl
    from benchmarks.annotators import hh_rlhf_lines, importable
    from benchmarks.export import load_dialogues

    project_id, seconds = build_settled(labels)
    started = time.perf_counter()
    project = Project.objects.get(id=project_id)
    with transaction.atomic():
        progress_recount(project=project)  # as check_integrity --repair would: a COPY writes no counters
    lines = hh_rlhf_lines([dialogue for dialogue in load_dialogues() if importable(dialogue)], NEW_ITEMS, "new-")
    project_import_jsonl(project=project, lines=lines, source="new.jsonl")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return project_id, seconds + time.perf_counter() - started


def first_pages(project) -> tuple[float, float]:
    """Milliseconds for the first page of each filter, as the label browser and the Items tab read it."""
    from annotation.review import BrowserFilters, review_labels
    from annotation.review_items import ItemFilters, review_items

    labels_ms, _ = timed(lambda: list(review_labels(project=project, filters=BrowserFilters(disagreement=True))[:PAGE]))
    items_ms, _ = timed(lambda: list(review_items(project=project, filters=ItemFilters(agreement_below=THRESHOLD))[:PAGE]))
    return labels_ms, items_ms


def new_label(project, annotators, rng) -> None:
    from annotation.assignment import assignment_claim_next
    from annotation.services import label_submit

    for annotator in rng.sample(annotators, len(annotators)):
        lease = assignment_claim_next(project=project, annotator=annotator)
        if lease is not None:
            label_submit(assignment_id=lease.id, annotator=annotator, client_id=uuid.uuid4(), choice=rng.choice("AB"))
            return
    raise SystemExit("no item left for any annotator: raise NEW_ITEMS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=int, default=300_000, help="labels in the project")
    parser.add_argument("--changes", type=int, default=30, help="changes, each followed by the first pages")
    parser.add_argument("--target-ms", type=float, default=100.0, help="every page after a change must take less")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help=f"leave the database {BENCH_DB} behind")
    args = parser.parse_args()
    if args.labels < 30 or args.changes < 1:
        raise SystemExit("--labels: at least 30; --changes: at least 1.")

    database_url = recreate_database(server_url_from_env(), BENCH_DB)
    os.environ.update(bench_environment(database_url))
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection

    from annotation.agreement import item_ids_below_agreement
    from annotation.models import Label, Project
    from annotation.review import BrowserFilters, label_review, project_disagreeing_label_ids, review_labels
    from annotation.review_items import ItemFilters, review_items

    passed = False
    try:
        project_id, built_seconds = build(args.labels)
        project = Project.objects.get(id=project_id)
        annotators = list(project.annotators.order_by("id"))
        reviewer = User.objects.create(username="reviewer", password="!")
        project.reviewers.add(reviewer)
        print(f"Built {args.labels:,} labels (3 per item, {len(annotators)} annotators, HH-RLHF) with COPY, and "
              f"{NEW_ITEMS:,} unlabelled items, in {built_seconds:.1f} s. PostgreSQL, {os.cpu_count()} CPU cores.",
              flush=True)

        majority_ms, _ = timed(lambda: project_disagreeing_label_ids(project=project))
        agreement_ms, _ = timed(lambda: item_ids_below_agreement(project_id=project.id, threshold=THRESHOLD))
        print(f"baseline: a full read, what each first page after a change cost before: disagreement "
              f"{majority_ms / 1000:.2f} s, agreement below {THRESHOLD} {agreement_ms / 1000:.2f} s", flush=True)
        first_labels_ms, first_items_ms = first_pages(project)  # this process's first read: a full one
        # As config/wsgi.py does for a web process: what is alive now (the built data, the kept
        # answers) stays out of later full collections, which would otherwise land in a timed page.
        freeze_client_heap()
        print(f"this process's first pages (full reads): disagreement {first_labels_ms:.0f} ms, "
              f"agreement below {first_items_ms:.0f} ms", flush=True)

        rng = random.Random(args.seed)
        top = Label.objects.filter(item__project=project).order_by("-id").values_list("id", flat=True).first()
        bottom = Label.objects.filter(item__project=project).order_by("id").values_list("id", flat=True).first()
        rejected: list[int] = []
        change_ms, labels_ms, items_ms = [], [], []
        print(f"\n{'#':>3} {'change':<14} {'change ms':>10} {'disagreement page ms':>21} {'agreement page ms':>18}")
        for number in range(1, args.changes + 1):
            if number % 3:
                change = "3 new labels"
                spent, _ = timed(lambda: [new_label(project, annotators, rng) for _ in range(3)])
            elif number % 6 == 0 and rejected:
                change = "revert"
                label_id = rejected.pop(rng.randrange(len(rejected)))
                spent, _ = timed(lambda: label_review(label_id=label_id, reviewer=reviewer, decision="revert"))
            else:
                change = "reject"
                label_id = rng.randint(bottom, top)
                rejected.append(label_id)
                spent, _ = timed(lambda: label_review(label_id=label_id, reviewer=reviewer, decision="reject",
                                                      reason="benchmark"))
            labels_page, items_page = first_pages(project)
            change_ms.append(spent)
            labels_ms.append(labels_page)
            items_ms.append(items_page)
            print(f"{number:>3} {change:<14} {spent:>10.1f} {labels_page:>21.1f} {items_page:>18.1f}", flush=True)

        # What each filter selects as the browser reads it (the kept answers: nothing changed since
        # the last pages), against full reads.
        browsed_labels = set(review_labels(project=project, filters=BrowserFilters(disagreement=True))
                             .values_list("id", flat=True))
        browsed_items = set(review_items(project=project, filters=ItemFilters(agreement_below=THRESHOLD))
                            .values_list("id", flat=True))
        exact = browsed_labels == project_disagreeing_label_ids(project=project) and (
            browsed_items == item_ids_below_agreement(project_id=project.id, threshold=THRESHOLD)
        )
        worst = max(max(labels_ms), max(items_ms))
        print(f"\nchanges: p50 {percentile(change_ms, 0.5):.1f} ms; first pages after them: disagreement p50 "
              f"{percentile(labels_ms, 0.5):.1f} ms, max {max(labels_ms):.1f} ms; agreement below p50 "
              f"{percentile(items_ms, 0.5):.1f} ms, max {max(items_ms):.1f} ms")
        print(f"the kept answers equal full reads of every ranking: {exact}")
        passed = exact and worst < args.target_ms
        print(f"{'PASS' if passed else 'FAIL'}: the slowest first page after a change {worst:.1f} ms (target < "
              f"{args.target_ms:.0f} ms) at {args.labels:,} labels; a full read, what each cost before: "
              f"{majority_ms / 1000:.2f} s and {agreement_ms / 1000:.2f} s")
    finally:
        connection.close()
        if not args.keep:
            recreate_database(server_url_from_env(), BENCH_DB, drop_only=True)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
