"""Turning what the annotator's client sends into a label's stored form. Pure; no database.

The client speaks in *positions* ("A", "B", ... left to right, as shown); the
label stores *response ids*, through the assignment's ``display_order``. Every
check names the field that is wrong.
"""
import math
from dataclasses import dataclass, field

from annotation.models import Assignment, Label, Project
from annotation.preferences import pairwise_ranking
from config.errors import DomainError

Choice, Flag, Position, Strength = Label.Choice, Label.Flag, Assignment.Position, Label.Strength
# Flags about the item as a whole: a position sent with one is dropped.
ITEM_LEVEL_FLAGS = frozenset({Flag.BROKEN_PROMPT})
# A day on one item is already implausible; anything above it is a broken client.
MAX_SECONDS_SPENT = 86400
# Flags a client may send at once. Each (flag, position) is stored once whatever the count.
MAX_FLAGS = 50


@dataclass(frozen=True)
class Submission:
    ranking: list[list[int]]
    is_tie: bool = False
    both_bad: bool = False
    strength: int | None = None
    ratings: dict[str, dict[str, int]] = field(default_factory=dict)
    flags: list[dict] = field(default_factory=list)
    rationale: str = ""


def _invalid(field_name: str, message: str):
    return DomainError(f"{field_name}: {message}", fields={field_name: [message]})


def _position_map(display_order: list[int]) -> dict[str, int]:
    # An item never shows more responses than there are letters (annotation.importing).
    return dict(zip(Position.values, display_order))


def _pairwise_ranking(choice: str | None, strength: int | None, display_order: list[int]) -> tuple[list, bool, bool]:
    if choice not in Choice.values:
        raise _invalid("choice", f"must be one of {', '.join(Choice.values)}")
    if choice in (Choice.TIE, Choice.BOTH_BAD) and strength is not None:
        raise DomainError(
            "A tie has no strength." if choice == Choice.TIE else "'Both bad' has no strength.",
            fields={"strength": ["must be empty unless A or B is chosen"]},
        )
    left, right = display_order[0], display_order[1]
    winner = {Choice.A: left, Choice.B: right}.get(choice)
    return pairwise_ranking(left=left, right=right, winner=winner), choice == Choice.TIE, choice == Choice.BOTH_BAD


def _ranking_from_positions(groups, display_order: list[int]) -> list[list[int]]:
    """``[["B"], ["A", "C"]]`` -> response ids; every shown response exactly once."""
    positions = _position_map(display_order)
    if not isinstance(groups, list) or not groups or not all(isinstance(g, list) and g for g in groups):
        raise _invalid("ranking", "must be a list of non-empty lists of positions, best first")
    flat = [position for group in groups for position in group]
    unknown = [p for p in flat if p not in positions]
    if unknown:
        raise _invalid("ranking", f"unknown position {unknown[0]!r}; this item shows {', '.join(positions)}")
    if sorted(flat) != sorted(positions):
        raise _invalid("ranking", f"must place each of {', '.join(positions)} exactly once")
    if len(groups) == 1:
        raise _invalid("ranking", "puts every response level; rank at least two apart or skip the item")
    return [[positions[p] for p in group] for group in groups]


def _ratings(raw, criteria: list[dict], display_order: list[int]) -> dict[str, dict[str, int]]:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise _invalid("ratings", "must map a position to {criterion: score}")
    positions = _position_map(display_order)
    by_key = {criterion["key"]: criterion for criterion in criteria}
    stored: dict[str, dict[str, int]] = {}
    for position, scores in raw.items():
        if position not in positions:
            raise _invalid("ratings", f"unknown position {position!r}")
        if not isinstance(scores, dict):
            raise _invalid(f"ratings.{position}", "must map a criterion to a score")
        clean = {}
        for key, score in scores.items():
            if key not in by_key:
                raise _invalid(f"ratings.{position}.{key}", "is not a criterion of this project")
            scale = by_key[key].get("scale", 5)
            if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= scale:
                raise _invalid(f"ratings.{position}.{key}", f"must be a whole number from 1 to {scale}")
            clean[key] = score
        stored[str(positions[position])] = clean
    for criterion in criteria:
        if criterion.get("required"):
            for position, response_id in positions.items():
                if criterion["key"] not in stored.get(str(response_id), {}):
                    raise _invalid(f"ratings.{position}.{criterion['key']}", "is required")
    return stored


def _flags(raw, display_order: list[int]) -> list[dict]:
    raw = raw or []
    if not isinstance(raw, list):
        raise _invalid("flags", 'must be a list like [{"flag": "unsafe", "position": "A"}]')
    if len(raw) > MAX_FLAGS:
        raise _invalid("flags", f"at most {MAX_FLAGS} entries; each flag and position counts once")
    positions = _position_map(display_order)
    stored = []
    for index, entry in enumerate(raw):
        if isinstance(entry, str):
            entry = {"flag": entry}
        if not isinstance(entry, dict) or entry.get("flag") not in Flag.values:
            raise _invalid(f"flags[{index}].flag", f"must be one of {', '.join(Flag.values)}")
        position = entry.get("position")
        if position is not None and position not in positions:
            raise _invalid(f"flags[{index}].position", f"unknown position {position!r}")
        if entry["flag"] in ITEM_LEVEL_FLAGS:
            position = None
        flag = {"flag": entry["flag"], "response_id": positions[position] if position else None}
        if flag not in stored:
            stored.append(flag)
    return stored


def check_seconds_spent(value) -> float:
    """Active seconds on the item: a finite number from 0 to ``MAX_SECONDS_SPENT``."""
    message = f"must be a number of seconds from 0 to {MAX_SECONDS_SPENT}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _invalid("seconds_spent", message)
    if not math.isfinite(value) or not 0 <= value <= MAX_SECONDS_SPENT:
        raise _invalid("seconds_spent", message)
    return float(value)


def build_submission(
    *,
    label_format: str,
    criteria: list[dict],
    rationale_mode: str,
    display_order: list[int],
    choice: str | None = None,
    ranking=None,
    strength: int | None = None,
    ratings=None,
    flags=None,
    rationale: str = "",
) -> Submission:
    """Validate one submission against the project's settings and map positions to response ids."""
    if strength is not None and strength not in Strength.values:
        weakest, strongest = min(Strength), max(Strength)
        raise _invalid("strength", f"must be {weakest} ({weakest.label}) to {strongest} ({strongest.label})")
    if label_format == Project.LabelFormat.RANKING:
        if ranking is None:
            raise _invalid("ranking", "is required in a ranking project (best first, ties grouped)")
        if strength is not None:
            raise _invalid("strength", "applies only to a pairwise choice")
        ordered = _ranking_from_positions(ranking, display_order)
        is_tie = both_bad = False
    else:
        ordered, is_tie, both_bad = _pairwise_ranking(choice, strength, display_order)

    rationale = (rationale or "").strip()
    if rationale_mode == Project.RationaleMode.REQUIRED and not rationale:
        raise _invalid("rationale", "is required in this project: say briefly why")
    if rationale_mode == Project.RationaleMode.OFF:
        rationale = ""
    return Submission(
        ranking=ordered,
        is_tie=is_tie,
        both_bad=both_bad,
        strength=strength,
        ratings=_ratings(ratings, criteria, display_order),
        flags=_flags(flags, display_order),
        rationale=rationale,
    )
