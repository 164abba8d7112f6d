"""Request body parsers for the API.

DRF's JSONParser hands the body to ``json.load``, whose recursive decoder raises
RecursionError (a 500, or Django's debug page) on a body nested a few thousand levels
deep, e.g. ``[[[[...]]]]``. No request of this API nests more than a handful of
levels, so ``JSONParser`` here counts the nesting first, without recursion, and
refuses anything deeper than ``MAX_JSON_DEPTH`` with a 400 before decoding.
"""
import codecs
import json
import re

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant

# Deeper than any request body of this API (a ranking is three levels) by a wide margin,
# and far below Python's recursion limit.
MAX_JSON_DEPTH = 64

# A JSON string (escapes included) or one bracket: strings are skipped whole, so a
# bracket inside a string does not count.
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``text`` opens more than ``limit`` arrays/objects inside one another.

    Iterative, so it is safe on any input; malformed text is left to the decoder.
    """
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return True
        elif token in "]}":
            depth -= 1
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser, refusing bodies nested deeper than ``MAX_JSON_DEPTH``."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read() if stream is not None else ""
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if json_depth_exceeds(text):
            raise ParseError(f"JSON parse error - the body is nested deeper than {MAX_JSON_DEPTH} levels.")
        parse_constant = strict_constant if self.strict else None
        try:
            return json.loads(text, parse_constant=parse_constant)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


# The API's parsers, in DRF's default order; settings.REST_FRAMEWORK names the same ones.
API_PARSER_CLASSES = [JSONParser, parsers.FormParser, parsers.MultiPartParser]
# DRF's token view lists form bodies first; same order here, so its schema does not change.
TOKEN_PARSER_CLASSES = [parsers.FormParser, parsers.MultiPartParser, JSONParser]
