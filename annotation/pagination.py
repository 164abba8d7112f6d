"""Cursor pagination for list endpoints whose rows only ever grow at the end (labels).

A cursor remembers the last id seen, not a page number, so rows inserted while a client
walks the pages appear once, at the end, and none is repeated; and a page deep into a
million rows costs one index range scan, not an OFFSET.

Ids are handed out when a row is inserted, not when its transaction commits, so a row
whose transaction is still committing while a walk passes its id (a submit in flight,
milliseconds) can be missed by that walk; the next walk has it. Closing that gap would
need every page to wait on the writers in flight, which would put readers on the
submit path.
"""
import re

from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

from config.errors import DomainError

# A cursor's position is an id: a signed 64-bit integer (BigAutoField) and nothing else.
_POSITION = re.compile(r"-?[0-9]{1,19}")
_INT64_MAX = 2**63 - 1
# Short enough that int() never meets a thousand-digit number.
_PAGE_SIZE = re.compile(r"[0-9]{1,6}")


class IdCursorPagination(CursorPagination):
    """Pages ordered by ``id``: ``?cursor=`` (opaque, from ``next``/``previous``) and ``?page_size=``.

    Unlike DRF's default, a bad ``page_size`` or a tampered cursor is a 400 naming the
    parameter rather than silently the default page (or a 500 from a cursor whose position
    is not a number).
    """

    ordering = "id"
    page_size = 100
    max_page_size = 1000
    page_size_query_param = "page_size"
    cursor_query_param = "cursor"

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw.strip() == "":
            return self.page_size
        raw = raw.strip()
        if not _PAGE_SIZE.fullmatch(raw) or not 1 <= int(raw) <= self.max_page_size:
            raise DomainError(
                f"page_size must be a whole number from 1 to {self.max_page_size}.",
                fields={self.page_size_query_param: [f"a whole number from 1 to {self.max_page_size}"]},
            )
        return int(raw)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise self._invalid_cursor() from None
        if cursor is not None and cursor.position is not None and not self._valid_position(cursor.position):
            raise self._invalid_cursor()
        return cursor

    def _invalid_cursor(self) -> DomainError:
        return DomainError(
            "cursor is not one this API gave out: follow a next or previous link, or start without one.",
            fields={self.cursor_query_param: ["not a cursor from a next or previous link"]},
        )

    @staticmethod
    def _valid_position(position: str) -> bool:
        return bool(_POSITION.fullmatch(position)) and abs(int(position)) <= _INT64_MAX

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size, default=self.page_size)
                parameter["description"] = f"Rows per page, 1 to {self.max_page_size} (default {self.page_size})."
            elif parameter["name"] == self.cursor_query_param:
                parameter["description"] = "Opaque: take it from a `next` or `previous` link."
        return parameters
