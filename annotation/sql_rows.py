"""Model instances from hand-written SQL, for the few joined queries that every label runs.

Django compiles a queryset to SQL each time it is evaluated. For the hot path's queries that
join two or three models (``select_related``) and lock rows, compiling took about 1 ms of CPU
on a 2-core server, longer than PostgreSQL took to run them, and one submit-with-next runs
several (docs/benchmarks.md, "What changed on the hot path"). Those queries are written as
SQL in the module each belongs to, their select lists from ``columns``; ``instances`` turns a
row back into the very instances the ORM would have built: each field's value goes through the
converters the ORM applies (``from_db_value``, the backend's), then ``Model.from_db``, the
documented hook the ORM itself loads through. ``tests/annotation/test_sql_rows.py`` checks the
instances field by field against the ORM's, on SQLite and on PostgreSQL.
"""
from collections.abc import Sequence
from functools import cache

from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import Model


def columns(model: type[Model], alias: str) -> str:
    """The select list of ``model``'s concrete fields under table alias ``alias``, in the order
    ``instances`` reads them."""
    return _columns(model, alias, connection.vendor)


@cache
def _columns(model: type[Model], alias: str, vendor: str) -> str:
    return ", ".join(f"{alias}.{connection.ops.quote_name(field.column)}" for field in model._meta.concrete_fields)


def instances(row: Sequence, models: Sequence[type[Model]]) -> list[Model]:
    """One instance per model in ``models``, from ``row``: a select list of ``columns(model, ...)``
    for each, in that order. Relations between them are the caller's to attach
    (``assignment.item = item``), as ``select_related`` attaches them."""
    made, start = [], 0
    for model in models:
        attnames, converters = _loader(model, connection.vendor)
        values = list(row[start : start + len(attnames)])
        for index, expression, field_converters in converters:
            for converter in field_converters:
                values[index] = converter(values[index], expression, connection)
        made.append(model.from_db(DEFAULT_DB_ALIAS, attnames, values))
        start += len(attnames)
    return made


@cache
def _loader(model: type[Model], vendor: str) -> tuple[list[str], list[tuple]]:
    """``model``'s field attnames, and for each field that has any, the ORM's converters.

    Cached per backend, as the ORM's own are per query: a backend's converters depend on its
    settings (SQLite's time zone), not on which of a process's connections runs the query.
    """
    attnames, converters = [], []
    for index, field in enumerate(model._meta.concrete_fields):
        attnames.append(field.attname)
        expression = field.cached_col
        field_converters = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        if field_converters:
            converters.append((index, expression, field_converters))
    return attnames, converters


def lock_clause(*, of: str, skip_locked: bool = False) -> str:
    """``FOR UPDATE OF <of>`` (and ``SKIP LOCKED``) where the backend locks rows; nothing on SQLite,
    which locks the whole database for a write, as ``select_for_update`` does there."""
    if not connection.features.has_select_for_update:
        return ""
    return f"FOR UPDATE OF {of}" + (" SKIP LOCKED" if skip_locked else "")
