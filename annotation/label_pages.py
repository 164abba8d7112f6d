"""Reads behind the labels list: which labels, and (``?include=texts``) what was labelled.

Starts from ``selectors.labels_visible_to``, so the scoping rule (admins all, annotators
their own) lives in one place. A page costs the same number of queries whatever its size:
the labels with their prompts in one, the page's response texts in one more.
"""
from collections.abc import Iterable

from django.db.models import QuerySet

from annotation import selectors
from annotation.models import ComparisonItemResponse, Label, Project
from config.errors import DomainError

TEXTS = "texts"
INCLUDES = (TEXTS,)


def label_includes_parse(values: Iterable[str]) -> frozenset[str]:
    """``?include=`` values (repeated or comma-separated) as a set; DomainError naming an unknown one."""
    names = {name.strip() for value in values for name in value.split(",")} - {""}
    unknown = sorted(names - set(INCLUDES))
    if unknown:
        shown = ", ".join(repr(name[:40]) for name in unknown[:5])
        raise DomainError(
            f"include: unknown value {shown}; known: {', '.join(INCLUDES)}.",
            fields={"include": [f"unknown: {shown}; known: {', '.join(INCLUDES)}"]},
        )
    return frozenset(names)


def labels_for_page(*, user, project: Project, includes: frozenset[str]) -> QuerySet:
    """The labels ``user`` may see, ordered by id, with the prompt joined in when texts are wanted."""
    labels = selectors.labels_visible_to(user=user, project=project)
    if TEXTS in includes:
        labels = labels.select_related("item__prompt")
    return labels


def label_page_attach_texts(*, user, labels: list[Label]) -> None:
    """Set ``label.shown_responses`` on each label of a page: its responses in the order shown.

    One query for the whole page. Each entry is ``{"id", "text"}``, plus ``"model_name"``
    for admins only: annotators never learn which model wrote what (docs/security.md,
    annotation is blind), not even for their own past labels.
    """
    with_model_names = selectors.user_is_project_admin(user)
    fields = ["item_id", "response_id", "response__text"] + (["response__model_name"] if with_model_names else [])
    # Through the item's slots, so a label only ever shows responses of its own item.
    rows = ComparisonItemResponse.objects.filter(item_id__in={label.item_id for label in labels}).values(*fields)
    by_item: dict[int, dict[int, dict]] = {}
    for row in rows:
        entry = {"id": row["response_id"], "text": row["response__text"]}
        if with_model_names:
            entry["model_name"] = row["response__model_name"]
        by_item.setdefault(row["item_id"], {})[row["response_id"]] = entry
    for label in labels:
        responses = by_item.get(label.item_id, {})
        label.shown_responses = [responses[response_id] for response_id in label.display_order if response_id in responses]
