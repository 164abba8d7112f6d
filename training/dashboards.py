"""Reads for a project's dashboard: labelling activity, agreement, reward-model accuracy, loss curves.

Every series is bounded by a time window or a fixed number of rows, so a poll of the dashboard
costs about the same in a project's first week and after a million labels. The label counts
are aggregated in SQL (``TruncDate``/``TruncHour`` + ``Count``) from the window's labels only:
the ``Label(item, created_at)`` index gives each of the project's items a range scan on
``created_at``, so labels older than the window (or of other projects) are not read
(tests/training/test_dashboards_plans.py checks the plans). While the labels table is still
small, PostgreSQL may prefer to read it whole, which is then cheaper.
"""
import datetime
import math
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count
from django.db.models.functions import TruncDate, TruncHour
from django.utils import timezone

from annotation.agreement import agreement_rate
from annotation.models import Label, Project
from training.ml.intervals import wilson_interval
from training.models import ModelVersion, TrainingRun

DAYS = 30
HOURS = 48
WEEKS = 8
# Agreement reads rankings into Python (annotation.agreement works on verdicts, not SQL), so a
# week reads at most this many labels: the cost of a busy week is capped, and the point says so.
AGREEMENT_LABELS_PER_WEEK = 20_000
LOSS_CURVE_RUNS = 10
# Two-sided 95 %: the same z as training.ml.evaluation (not imported: it pulls in torch).


@dataclass(frozen=True)
class DashboardWindow:
    """The moment the dashboard is drawn at; every series ends there."""

    now: datetime.datetime

    @property
    def today(self) -> datetime.date:
        return timezone.localdate(self.now)


def labels_per_day(project: Project, *, window: DashboardWindow, days: int = DAYS) -> dict:
    """Labels per local day (TIME_ZONE) and annotator over the last ``days`` days, today included.

    ``{"days": [date, ...], "annotators": [{"id", "username", "counts": [per day], "total"}]}``,
    days oldest first with zeros filled in, annotators by total (most first), then name. One query.
    """
    first_day = window.today - datetime.timedelta(days=days - 1)
    start = datetime.datetime.combine(first_day, datetime.time.min, tzinfo=timezone.get_current_timezone())
    rows = (
        Label.objects.filter(item__project=project, created_at__gte=start, created_at__lte=window.now)
        .annotate(day=TruncDate("created_at"))
        .values("day", "annotator_id", "annotator__username")
        .annotate(labels=Count("id"))
        .order_by()
    )
    day_list = [first_day + datetime.timedelta(days=offset) for offset in range(days)]
    index = {day: position for position, day in enumerate(day_list)}
    by_annotator: dict[int, dict] = {}
    for row in rows:
        entry = by_annotator.setdefault(
            row["annotator_id"], {"id": row["annotator_id"], "username": row["annotator__username"], "counts": [0] * days}
        )
        position = index.get(row["day"])
        if position is not None:  # a label stamped in the future (clock skew) is left out
            entry["counts"][position] += row["labels"]
    annotators = [{**entry, "total": sum(entry["counts"])} for entry in by_annotator.values()]
    annotators.sort(key=lambda entry: (-entry["total"], entry["username"]))
    return {"days": day_list, "annotators": annotators}


def labels_per_hour(project: Project, *, window: DashboardWindow, hours: int = HOURS) -> dict:
    """Labels per UTC hour over the last ``hours`` hours, the current (partial) hour last.

    ``{"hours": [start of hour, ...], "counts": [...]}``; hours in UTC so a daylight-saving change
    cannot fold two hours into one (the page shows them in the reader's zone). One query.
    """
    utc = datetime.timezone.utc
    current = window.now.astimezone(utc).replace(minute=0, second=0, microsecond=0)
    hour_list = [current - datetime.timedelta(hours=hours - 1 - offset) for offset in range(hours)]
    rows = (
        Label.objects.filter(item__project=project, created_at__gte=hour_list[0], created_at__lte=window.now)
        .annotate(hour=TruncHour("created_at", tzinfo=utc))
        .values("hour")
        .annotate(labels=Count("id"))
        .order_by()
    )
    counted = {row["hour"].astimezone(utc): row["labels"] for row in rows}
    return {"hours": hour_list, "counts": [counted.get(hour, 0) for hour in hour_list]}


def agreement_per_week(project: Project, *, window: DashboardWindow, weeks: int = WEEKS) -> list[dict]:
    """Raw inter-annotator agreement (``annotation.agreement.agreement_rate``) per local week, Monday first.

    A week's figure compares the labels created in that week with each other, item by item, so
    two labels of one item made in different weeks are not compared. "Both bad" labels carry no
    preference and are left out, as in ``project_agreement``. A week reads at most
    AGREEMENT_LABELS_PER_WEEK labels (whole items, in item order): ``capped`` says when it stopped
    there. One query per week.
    """
    zone = timezone.get_current_timezone()
    this_monday = window.today - datetime.timedelta(days=window.today.weekday())
    points = []
    for offset in range(weeks - 1, -1, -1):
        monday = this_monday - datetime.timedelta(weeks=offset)
        start = datetime.datetime.combine(monday, datetime.time.min, tzinfo=zone)
        end = datetime.datetime.combine(monday + datetime.timedelta(weeks=1), datetime.time.min, tzinfo=zone)
        rows = list(
            Label.objects.filter(item__project=project, both_bad=False, created_at__gte=start, created_at__lt=end)
            .order_by("item_id", "id")
            .values_list("item_id", "ranking")[: AGREEMENT_LABELS_PER_WEEK + 1]
        )
        capped = len(rows) > AGREEMENT_LABELS_PER_WEEK
        if capped:
            # Drop the last item, which the cap may have cut in two.
            last_item = rows[AGREEMENT_LABELS_PER_WEEK][0]
            rows = [row for row in rows[:AGREEMENT_LABELS_PER_WEEK] if row[0] != last_item]
        by_item: dict[int, list] = defaultdict(list)
        for item_id, ranking in rows:
            by_item[item_id].append(ranking)
        rate, comparisons = agreement_rate(rankings for rankings in by_item.values() if len(rankings) > 1)
        points.append({"week": monday, "agreement": rate, "comparisons": comparisons, "labels": len(rows), "capped": capped})
    return points


def _number(value) -> float | None:
    """A finite number from stored metrics (JSON written by workers), or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def accuracy_per_version(project: Project) -> list[dict]:
    """Each model version's held-out accuracy with its 95 % interval, oldest version first.

    The interval is the stored ``accuracy_ci`` when the metrics have one, else a Wilson interval
    from ``accuracy`` and ``pairs``; None when neither can be had. One query.
    """
    points = []
    versions = ModelVersion.objects.filter(project=project).order_by("version").values("version", "status", "metrics")
    for row in versions:
        metrics = row["metrics"] if isinstance(row["metrics"], dict) else {}
        accuracy = _number(metrics.get("accuracy"))
        if accuracy is not None and not 0 <= accuracy <= 1:
            accuracy = None
        pairs = metrics.get("pairs") if type(metrics.get("pairs")) is int else None
        interval, source = None, None
        stored = metrics.get("accuracy_ci")
        if isinstance(stored, list) and len(stored) == 2 and all(_number(bound) is not None for bound in stored):
            interval, source = [float(stored[0]), float(stored[1])], "stored"
        elif accuracy is not None and pairs:
            interval, source = list(wilson_interval(accuracy, pairs)), "wilson"
        points.append(
            {
                "version": row["version"], "status": row["status"], "accuracy": accuracy, "pairs": pairs,
                "interval": interval, "interval_source": source,
            }
        )
    return points


def loss_curves(project: Project, *, runs: int = LOSS_CURVE_RUNS) -> list[dict]:
    """The training loss curves of the project's newest ``runs`` runs that reported one, newest first.

    Each curve is at most ``training.services.LOSS_CURVE_MAX_POINTS`` points (thinned as it is
    written), so the answer is bounded. One query.
    """
    rows = (
        TrainingRun.objects.filter(project=project)
        .exclude(loss_curve=[])
        .order_by("-id")
        .values("id", "status", "created_at", "model_version__version", "loss_curve")[:runs]
    )
    return [
        {
            "run": row["id"], "status": row["status"], "created_at": row["created_at"],
            "model_version": row["model_version__version"], "points": row["loss_curve"],
        }
        for row in rows
    ]


def project_dashboard(project: Project, *, now: datetime.datetime | None = None) -> dict:
    """Every series of the dashboard, drawn at ``now`` (default: the present)."""
    window = DashboardWindow(now=now or timezone.now())
    return {
        "generated_at": window.now,
        "time_zone": timezone.get_current_timezone_name(),
        "labels_per_day": labels_per_day(project, window=window),
        "labels_per_hour": labels_per_hour(project, window=window),
        "agreement_per_week": agreement_per_week(project, window=window),
        "accuracy_per_version": accuracy_per_version(project),
        "loss_curves": loss_curves(project),
    }
