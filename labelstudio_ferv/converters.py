"""Path converters shared by every API's URLs."""

import re

from django.urls import register_converter


class IdConverter:
    """An id in a path; anything that is not a number names nothing and becomes -1.

    Every path segment reaches the view, so a malformed id gets the API's JSON 404 rather than
    Django's HTML page for unknown URLs.
    """

    regex = "[^/]+"

    def to_python(self, value: str) -> int:
        return int(value) if re.fullmatch(r"-?[0-9]{1,30}", value) else -1

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "lsf_id")
