"""The API's JSON parser: DRF's, refusing what it would otherwise turn into a 500.

Two inputs made any endpoint fail, even without a login: JSON nested thousands deep (the
decoder runs out of stack and raises RecursionError, which DRF does not map) and a lone UTF-16
surrogate such as ``"\\ud800"`` (valid JSON, but not text: an error message that echoes it
cannot be encoded, nor can PostgreSQL store it). Both are refused here, at the one place every
JSON body goes through, with a 400 in the project's error shape.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError


def check_json(data: Any, *, max_depth: int) -> None:
    """Raise ParseError if ``data`` nests deeper than ``max_depth`` or holds a lone surrogate.

    Walks the parsed value with an explicit stack, so that the check itself cannot recurse.
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, dict | list):
            if depth > max_depth:
                raise ParseError(f"JSON parse error - nested deeper than {max_depth} levels.")
            if isinstance(value, dict):
                for key in value:
                    _check_text(key)
                items = value.values()
            else:
                items = value
            stack.extend((item, depth + 1) for item in items)


def _check_text(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Only lone surrogates fail: json.loads joins a valid pair into one character.
        raise ParseError("JSON parse error - a string holds a lone UTF-16 surrogate.") from None


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with a nesting limit and text that is always valid UTF-8."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deep.") from None
        check_json(data, max_depth=settings.API_JSON_MAX_DEPTH)
        return data
