"""A condition on a set of ids computed in Python, whatever its size.

``filter(id__in=ids)`` binds one query parameter per id, and SQLite allows 32,766 parameters in
a statement (SQLITE_MAX_VARIABLE_NUMBER): on the embedded default, a label browser filter that
selected more labels than that was a server error ("too many SQL variables"). ``in_ids`` sends
the ids as one parameter: an array PostgreSQL unnests, or a JSON array SQLite's ``json_each``
reads.
"""
import json
from collections.abc import Iterable

from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL


def in_ids(field: str, ids: Iterable[int]) -> Q:
    """``Q(<field>__in=ids)`` with the ids in one query parameter (a subquery over them)."""
    values = [int(value) for value in ids]
    if connection.vendor == "postgresql":
        subquery = RawSQL("SELECT unnest(%s::bigint[])", [values])
    else:
        subquery = RawSQL("SELECT value FROM json_each(%s)", [json.dumps(values)])
    return Q(**{f"{field}__in": subquery})
