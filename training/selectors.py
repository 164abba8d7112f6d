"""Reads for the training side, scoped by the project the caller was already granted."""
import base64
import datetime
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    Case, Exists, F, FilteredRelation, FloatField, JSONField, Max, Min, OuterRef, Q, QuerySet, Subquery, Value, When,
)
from django.db.models.functions import Length, Substr

from annotation.bradley_terry import win_probability
from annotation.models import AnnotatorProgress, Label, Project, ProjectProgress, Response
from annotation.progress import project_response_count
from annotation.rendering import render_markdown
from annotation.selectors import projects_for_user, require_admin
from config.errors import DomainError, NotFoundError
from training.models import ModelVersion, ResponseScore, TrainingPolicy, TrainingRun
from training.schedule import next_occurrence


def champion_for(project: Project) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, status=ModelVersion.Status.CHAMPION).first()


def scores_version_for(project: Project, *, champion: ModelVersion | None = None) -> ModelVersion | None:
    """The version whose scores the Results page shows: the champion once it has scored every response.

    While a newly promoted champion is still scoring, the last champion that finished its
    scoring keeps being shown (scores are never deleted), so no page mixes two versions'
    scores; the switch happens in the transaction that marks the new set complete
    (``services.model_version_scoring_finish``). Before any champion finished scoring, the
    champion's own partial scores are the only ones there are. None without a champion.
    ``champion``: the project's champion when the caller has already read it.
    """
    champion = champion or champion_for(project)
    if champion is None or champion.scored_at is not None:
        return champion
    previous = (
        ModelVersion.objects.filter(project=project, scored_at__isnull=False, promoted_at__isnull=False)
        .exclude(id=champion.id)
        .order_by("-promoted_at", "-id")
        .first()
    )
    return previous or champion


def model_versions_for(project: Project) -> QuerySet:
    return ModelVersion.objects.filter(project=project).order_by("-version")


def training_runs_for(project: Project) -> QuerySet:
    return TrainingRun.objects.filter(project=project).select_related("model_version").order_by("-id")


def model_version_get_for_admin(*, user, version_id: int) -> ModelVersion:
    """The version if ``user`` administers its project; NotFoundError otherwise.

    A missing id and another project's version get the same answer, so ids cannot be
    probed; an annotator of the version's own project is told that only admins may.
    """
    version = (
        ModelVersion.objects.select_related("project")
        .filter(id=version_id, project__in=projects_for_user(user))
        .first()
    )
    if version is None:
        raise NotFoundError("No such model version.")
    require_admin(user)
    return version


# --- Reads the services and the reconciler decide by ------------------------------


def training_policy_for(project: Project) -> TrainingPolicy:
    """The project's policy, or an unsaved one holding the defaults."""
    policy = TrainingPolicy.objects.filter(project=project).first()
    if policy is None:
        policy = TrainingPolicy(project=project, nightly_at=settings.RETRAIN_NIGHTLY_AT)
    return policy


def model_version_next_number(*, project: Project) -> int:
    return (ModelVersion.objects.filter(project=project).aggregate(top=Max("version"))["top"] or 0) + 1


def stale_run_after() -> timedelta:
    """A running run (or rescoring) whose worker has not sent a heartbeat for this long is
    presumed dead (killed worker, lost machine). Heartbeats come every few seconds from a
    background thread, so this is many missed beats, not one slow step."""
    return timedelta(seconds=settings.TRAINING_STALE_AFTER_SECONDS)


def label_trigger_threshold(policy: TrainingPolicy) -> int:
    """New labels that request a run; 0 means the label trigger is off."""
    if policy.retrain_every_n_labels is not None:
        return policy.retrain_every_n_labels
    return settings.RETRAIN_EVERY_N_LABELS


def labels_since_last_success(project: Project, *, at_most: int) -> int:
    """Labels after the newest succeeded run's watermark, counted up to ``at_most``.

    Labels that arrived while a run trained are after its watermark, so they count
    toward the next run. The LIMIT keeps the count cheap however large the project.
    """
    watermark = (
        TrainingRun.objects.filter(project=project, status=TrainingRun.Status.SUCCEEDED)
        .aggregate(top=Max("label_watermark"))["top"]
        or 0
    )
    return Label.objects.filter(item__project=project, id__gt=watermark).values("id")[:at_most].count()


def automatic_retry_at(project: Project):
    """When an automatic (label-count) run may next be requested after consecutive failures.

    ``None`` when the latest finished run did not fail. The wait doubles with each
    failure since the last success, up to six hours, so a run that cannot succeed
    (say, too few prompts) does not retrain every minute.
    """
    last_success = (
        TrainingRun.objects.filter(project=project, status=TrainingRun.Status.SUCCEEDED).aggregate(top=Max("id"))["top"]
        or 0
    )
    failures = TrainingRun.objects.filter(project=project, status=TrainingRun.Status.FAILED, id__gt=last_success)
    count = failures.count()
    if not count:
        return None
    latest = failures.order_by("-id").values_list("finished_at", flat=True).first()
    if latest is None:  # failed without an end time (written by hand): nothing to wait from
        return None
    wait = min(settings.TRAINING_RETRY_BACKOFF_SECONDS * 2 ** (count - 1), 6 * 3600)
    return latest + timedelta(seconds=wait)


def next_nightly_at(policy: TrainingPolicy, *, first_label_at=None) -> datetime.datetime | None:
    """When the project's next nightly run is due; ``None`` when off or before any label.

    Due at the first ``nightly_at`` after the last nightly request (or the last time
    an admin changed ``nightly_at``), or, for a project that never ran one, after its
    first label: a fresh project is not retrained minutes after its first labels just
    because today's nightly time has passed.
    """
    if policy.nightly_at is None:
        return None
    anchor = policy.nightly_anchor_at
    if anchor is None:
        if first_label_at is None:
            # The project's few counter rows, not its labels: asking the labels walked every
            # older label of every project (~100 ms at 125,000), on each read of the policy and
            # on each minute's nightly check.
            first_label_at = AnnotatorProgress.objects.filter(project_id=policy.project_id).aggregate(
                first=Min("first_labelled_at")
            )["first"]
        anchor = first_label_at
    if anchor is None:
        return None
    return next_occurrence(policy.nightly_at, after=anchor, zone=ZoneInfo(settings.TIME_ZONE))


def newest_label_id(project: Project) -> int:
    """The project's newest label id (0 without labels): a snapshot's watermark."""
    return Label.objects.filter(item__project=project).aggregate(top=Max("id"))["top"] or 0


def model_version_for_worker(version_id: int) -> ModelVersion | None:
    """A version by id, unscoped: for tasks, which are handed ids the services already checked."""
    return ModelVersion.objects.filter(id=version_id).first()


def responses_missing_scores(version: ModelVersion) -> QuerySet:
    """The version's project's responses that have no score from it yet, with their prompts, by id."""
    return (
        Response.objects.filter(prompt__project_id=version.project_id)
        .exclude(scores__model_version=version)
        .select_related("prompt")
        .only("id", "text", "prompt__conversation")
        .order_by("id")
    )


def queued_runs_to_send(*, now) -> QuerySet:
    """Queued runs whose message was never sent, or sent long ago without a worker taking it."""
    resend_before = now - timedelta(seconds=settings.TRAINING_REDISPATCH_AFTER_SECONDS)
    return TrainingRun.objects.filter(status=TrainingRun.Status.QUEUED).filter(
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=resend_before)
    )


def champions_to_rescore(*, now) -> QuerySet:
    """Champions still missing scores whose rescoring was never sent, or went silent.

    Silent means no send and no heartbeat for ``stale_run_after``: the worker died, the
    message was lost, or the task failed. Gives up after SCORING_MAX_ATTEMPTS sends.
    """
    quiet_since = now - stale_run_after()
    return ModelVersion.objects.filter(
        status=ModelVersion.Status.CHAMPION, scored_at__isnull=True, scoring_attempts__lt=settings.SCORING_MAX_ATTEMPTS
    ).filter(
        Q(scoring_dispatched_at__isnull=True)
        | (Q(scoring_dispatched_at__lt=quiet_since) & (Q(scoring_heartbeat_at__isnull=True) | Q(scoring_heartbeat_at__lt=quiet_since)))
    )


def champions_with_new_responses(*, now) -> QuerySet:
    """Scored champions whose project has responses imported since: their scores are topped up.

    Compares the version's ``scored_responses`` with the project's response counter (no scan
    of the responses). Skips a top-up already on its way (sent after the last finish, and not
    silent for ``stale_run_after``) and one that has spent SCORING_MAX_ATTEMPTS sends.
    """
    quiet_since = now - stale_run_after()
    responses = ProjectProgress.objects.filter(project_id=OuterRef("project_id")).values("responses")[:1]
    return (
        ModelVersion.objects.filter(
            status=ModelVersion.Status.CHAMPION, scored_at__isnull=False,
            scoring_attempts__lt=settings.SCORING_MAX_ATTEMPTS,
        )
        .annotate(project_responses=Subquery(responses))
        .filter(project_responses__gt=F("scored_responses"))
        .filter(
            Q(scoring_dispatched_at__isnull=True)
            | Q(scoring_dispatched_at__lte=F("scored_at"))
            | (Q(scoring_dispatched_at__lt=quiet_since) & (Q(scoring_heartbeat_at__isnull=True) | Q(scoring_heartbeat_at__lt=quiet_since)))
        )
    )


# --- The Results page's responses table: keyset pages -------------------------------

SCORE_SORTS = ("prompt", "score", "-score")
_PREVIEW_CHARS = 160


@dataclass(frozen=True)
class ScoresFilter:
    """What the Results page's responses table shows; every field optional."""

    model: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    q: str | None = None
    sort: str = "prompt"


@dataclass(frozen=True)
class _Segment:
    """A run of rows in one keyset order: a filter, the ordering fields, one direction."""

    where: Q
    fields: tuple[str, ...]
    descending: bool = False


@dataclass
class ScoresPage:
    rows: list = field(default_factory=list)
    next_cursor: str | None = None
    previous_cursor: str | None = None


def responses_with_scores(project: Project, version: ModelVersion | None) -> QuerySet:
    """Responses of ``project`` with ``score`` from ``version`` (None if unscored) and its
    per-criterion heads' ``criterion_scores`` ({} for a version without them), by prompt.

    A LEFT JOIN on the version's scores rather than a subquery per row, so a filter or an
    ORDER BY on ``score`` can be driven by ResponseScore's (model_version, score, response)
    index. One query.
    """
    responses = Response.objects.filter(prompt__project=project).select_related("prompt").order_by("prompt_id", "id")
    if version is None:
        return responses.annotate(score=Value(None, output_field=FloatField()), criterion_scores=Value(None, JSONField()))
    return responses.annotate(
        version_score=FilteredRelation("scores", condition=Q(scores__model_version=version))
    ).annotate(score=F("version_score__score"), criterion_scores=F("version_score__criterion_scores"))


def version_criteria(version: ModelVersion | None) -> list[str]:
    """The criteria whose heads ``version`` carries (their scores are in ``criterion_scores``)."""
    return list((version.config or {}).get("criteria") or []) if version is not None else []


def _segments(filters: ScoresFilter, version: ModelVersion | None) -> list[_Segment]:
    """The keyset orders a sort walks, in turn: sorted by score, unscored rows come last."""
    if filters.sort == "prompt":
        return [_Segment(Q(), ("prompt_id", "id"))]
    scored = _Segment(Q(score__isnull=False), ("score", "id"), descending=filters.sort == "-score")
    unscored = _Segment(Q(score__isnull=True), ("id",))
    if version is None:
        return [unscored]
    if filters.min_score is not None or filters.max_score is not None:
        return [scored]
    return [scored, unscored]


def _beyond(segment: _Segment, values: list, *, forward: bool) -> Q:
    """Rows strictly after (``forward``) or before ``values`` in the segment's order.

    Written as ``a >= x AND (a > x OR b > y)`` rather than a row comparison, which the ORM
    cannot spell: the first term is an index range PostgreSQL seeks to, the rest a filter.
    """
    op = "gt" if forward != segment.descending else "lt"
    if len(segment.fields) == 1:
        return Q(**{f"{segment.fields[0]}__{op}": values[0]})
    (first, second), (x, y) = segment.fields, values
    return Q(**{f"{first}__{op}e": x}) & (Q(**{f"{first}__{op}": x}) | Q(**{f"{second}__{op}": y}))


def _order(segment: _Segment, *, forward: bool) -> list[str]:
    prefix = "-" if forward == segment.descending else ""
    return [prefix + name for name in segment.fields]


def _encode_cursor(*, sort: str, segment: int, values: list, forward: bool) -> str:
    payload = json.dumps({"o": sort, "s": segment, "k": values, "d": "n" if forward else "p"}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _invalid_cursor() -> DomainError:
    return DomainError(
        "cursor is not one this API gave out for this sort: follow a next or previous link, or start without one.",
        fields={"cursor": ["not a cursor from a next or previous link of this sort"]},
    )


def _decode_cursor(raw: str, *, sort: str, segments: list[_Segment]) -> tuple[int, list, bool]:
    """(segment, position values, forward) of a cursor; DomainError for anything not given out."""
    try:
        payload = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        segment, values, direction = payload["s"], payload["k"], payload["d"]
        valid = (
            payload["o"] == sort
            and type(segment) is int
            and 0 <= segment < len(segments)
            and direction in ("n", "p")
            and isinstance(values, list)
            and len(values) == len(segments[segment].fields)
        )
    except (ValueError, TypeError, KeyError):
        raise _invalid_cursor() from None
    if not valid:
        raise _invalid_cursor()
    for name, value in zip(segments[segment].fields, values):
        if name == "score":
            ok = type(value) in (int, float) and math.isfinite(value)
        else:
            ok = type(value) is int and abs(value) < 2**63
        if not ok:
            raise _invalid_cursor()
    return segment, values, direction == "n"


def _filtered(base: QuerySet, filters: ScoresFilter) -> QuerySet:
    if filters.model is not None:
        base = base.filter(model_name=filters.model)
    if filters.min_score is not None:
        base = base.filter(score__gte=filters.min_score)
    if filters.max_score is not None:
        base = base.filter(score__lte=filters.max_score)
    if filters.q:
        # A substring scan of every text: the cost is paid only by searches (see README).
        base = base.filter(Q(prompt__external_id__icontains=filters.q) | Q(text__icontains=filters.q))
    return base


# The table shows each response's stored, sanitised HTML (rendered at import) when it is at most
# this long; a longer one, or one a bulk loader left unrendered, is rendered from the first
# _HTML_SOURCE_CHARS of its text, so a page never carries whole novels.
_HTML_MAX_CHARS = 20_000
_HTML_SOURCE_CHARS = 4_000
# A filtered total is counted up to here (LIMIT): past it the page says "more than".
MATCHING_COUNT_LIMIT = 10_000


def _attach_html(rows: list) -> None:
    """Set ``rendered_html`` (sanitised HTML) and ``html_truncated`` on each row of a page. One query.

    Only short stored HTML leaves the database: a CASE picks it by its length, and the text is
    cut by SUBSTR, so the query reads at most about 24,000 characters per row.
    """
    if not rows:
        return
    found = {
        row["id"]: row
        for row in Response.objects.filter(id__in=[row.id for row in rows])
        .alias(html_length=Length("html"))
        .annotate(
            short_html=Case(When(html__isnull=False, html_length__lte=_HTML_MAX_CHARS, then=F("html")), default=Value(None)),
            text_head=Substr("text", 1, _HTML_SOURCE_CHARS),
            text_length=Length("text"),
        )
        .values("id", "short_html", "text_head", "text_length")
    }
    for row in rows:
        data = found.get(row.id)
        if data is None:  # deleted since the page was read
            row.rendered_html, row.html_truncated = "", False
        elif data["short_html"] is not None:
            row.rendered_html, row.html_truncated = data["short_html"], False
        else:
            row.rendered_html = render_markdown(data["text_head"])
            row.html_truncated = data["text_length"] > _HTML_SOURCE_CHARS


def responses_matching_count(project: Project, version: ModelVersion | None, *, filters: ScoresFilter) -> dict:
    """{"count": N, "capped": bool}: the responses the filters let through, counted up to MATCHING_COUNT_LIMIT.

    Without a filter it is the project's response counter (no scan). With one it is a COUNT over
    a LIMIT: a model or score filter walks its index range, a search scans the texts as the page
    itself does, and neither reads past the limit's worth of matches.
    """
    if filters.model is None and filters.min_score is None and filters.max_score is None and not filters.q:
        return {"count": project_response_count(project), "capped": False}
    if version is None and (filters.min_score is not None or filters.max_score is not None):
        return {"count": 0, "capped": False}
    rows = _filtered(responses_with_scores(project, version), filters).order_by().values("id")
    count = rows[: MATCHING_COUNT_LIMIT + 1].count()
    return {"count": min(count, MATCHING_COUNT_LIMIT), "capped": count > MATCHING_COUNT_LIMIT}


def responses_scores_page(
    project: Project,
    version: ModelVersion | None,
    *,
    filters: ScoresFilter,
    page_size: int,
    cursor: str | None = None,
    with_html: bool = False,
) -> ScoresPage:
    """One page of ``project``'s responses with ``version``'s scores, by keyset (no OFFSET, no COUNT).

    Sorted by prompt, one query; sorted by score, scored rows (in the requested direction)
    then unscored rows by id, so a page at the seam takes a second query. A cursor names the
    last (``next``) or first (``previous``) row of a page, so a page deep into a million rows
    costs one index range scan; rows added while a client walks appear at most once.
    Rows carry ``top_probability`` (see ``_mark_tops``), one more query; with ``with_html``,
    ``rendered_html`` and ``html_truncated`` too (see ``_attach_html``), one more.
    """
    if version is None and (filters.min_score is not None or filters.max_score is not None):
        return ScoresPage()  # nothing is scored, so nothing is in a score range
    segments = _segments(filters, version)
    # The preview is cut in the database, so a page never loads whole texts.
    base = _filtered(
        responses_with_scores(project, version)
        .only("id", "prompt_id", "model_name", "prompt__external_id", "prompt__conversation")
        .annotate(text_preview=Substr("text", 1, _PREVIEW_CHARS)),
        filters,
    )
    if cursor:
        start, values, forward = _decode_cursor(cursor, sort=filters.sort, segments=segments)
    else:
        start, values, forward = 0, None, True
    order = range(start, len(segments)) if forward else range(start, -1, -1)
    found: list[tuple[int, Response]] = []
    for index in order:
        segment = segments[index]
        rows = base.filter(segment.where)
        if index == start and values is not None:
            rows = rows.filter(_beyond(segment, values, forward=forward))
        found.extend((index, row) for row in rows.order_by(*_order(segment, forward=forward))[: page_size + 1 - len(found)])
        if len(found) > page_size:
            break
    more = len(found) > page_size
    found = found[:page_size]
    if not forward:
        found.reverse()
    page = ScoresPage(rows=[row for _, row in found])
    if found:
        def at(position: int, *, forward: bool) -> str:
            index, row = found[position]
            values = [getattr(row, name) for name in segments[index].fields]
            return _encode_cursor(sort=filters.sort, segment=index, values=values, forward=forward)

        if more if forward else True:
            page.next_cursor = at(-1, forward=True)
        if (cursor is not None) if forward else more:
            page.previous_cursor = at(0, forward=False)
    _mark_tops(page.rows, version)
    if with_html:
        _attach_html(page.rows)
    return page


def _mark_tops(rows: list, version: ModelVersion | None) -> None:
    """Set ``top_probability`` on each row: P(it beats its prompt's runner-up) if it scored
    highest among every response of its prompt, else None.

    A reward model's scores are Bradley–Terry logits, so P = sigmoid(top - runner-up). A
    prompt with one response, or one still being scored, has no top. One query for the
    page's prompts, whatever the filters left of them on this page.
    """
    for row in rows:
        row.top_probability = None
    if version is None or not rows:
        return
    by_prompt: dict[int, list[tuple[float | None, int]]] = defaultdict(list)
    scored = Response.objects.filter(prompt_id__in={row.prompt_id for row in rows}).annotate(
        version_score=FilteredRelation("scores", condition=Q(scores__model_version=version))
    )
    for prompt_id, response_id, score in scored.values_list("prompt_id", "id", "version_score__score"):
        by_prompt[prompt_id].append((score, response_id))
    tops: dict[int, float] = {}
    for candidates in by_prompt.values():
        if len(candidates) < 2 or any(score is None for score, _ in candidates):
            continue
        (first, top_id), (second, _) = sorted(candidates, reverse=True)[:2]
        tops[top_id] = win_probability(first - second)
    for row in rows:
        row.top_probability = tops.get(row.id)


def scores_summary(project: Project, version: ModelVersion | None, champion: ModelVersion | None = None) -> dict:
    """{"responses": N, "scored": M, "champion_scored": K}: the project's response counter, and index-only
    counts on PostgreSQL of ``version``'s scores and of ``champion``'s (one count when they are the same)."""
    def scored_by(model_version: ModelVersion | None) -> int:
        return ResponseScore.objects.filter(model_version=model_version).count() if model_version is not None else 0

    scored = scored_by(version)
    champion_scored = scored if champion is None or champion == version else scored_by(champion)
    return {"responses": project_response_count(project), "scored": scored, "champion_scored": champion_scored}


def project_model_names(project: Project) -> list[str]:
    """The distinct generating models of ``project``'s responses, by name ("" left out)."""
    return list(
        Response.objects.filter(prompt__project=project)
        .exclude(model_name="")
        .order_by("model_name")
        .values_list("model_name", flat=True)
        .distinct()
    )


def responses_missing_scores_page(version: ModelVersion, *, after_id: int, limit: int) -> list[Response]:
    """The next ``limit`` responses of ``responses_missing_scores`` with an id above ``after_id``.

    A keyset page: rescoring walks a project of any size holding one page, and each query
    is bounded by its LIMIT. On PostgreSQL it walks the responses' primary key from
    ``after_id`` and stops after ``limit`` matches. The bound is repeated on the scores
    side: without it the planner may merge against the version's scores from the lowest
    response id, which makes every page read all the scores before it (quadratic over a walk).
    """
    scored = ResponseScore.objects.filter(model_version=version, response_id=OuterRef("id"), response_id__gt=after_id)
    return list(
        Response.objects.filter(prompt__project_id=version.project_id, id__gt=after_id)
        .filter(~Exists(scored))
        .select_related("prompt")
        .only("id", "text", "prompt__conversation")
        .order_by("id")[:limit]
    )
