"""The media endpoint: checks a signed media URL against the logged-in user, then serves the file.

One code path for the local shapes (see ``media_urls`` for the URL and the S3 shape):

- embedded default and plain gunicorn: Django streams the file and answers HTTP Range requests
  (206 with Content-Range, 416 for a range outside the file), which browsers need to seek in a
  video and to step it frame by frame;
- behind nginx (``MEDIA_ACCEL_REDIRECT=1``): the answer is an empty response whose
  ``X-Accel-Redirect`` header names an internal nginx location; nginx serves the bytes (with
  Range) from the same media folder, so no gunicorn worker is held while a file is sent.
"""

from __future__ import annotations

import json
import mimetypes
import re
import time
from pathlib import PurePosixPath
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.utils.http import http_date
from drf_spectacular.utils import extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.views import APIView

from .errors import NotFound, PermissionDenied, error_body
from .media_urls import BadMediaUrl, ExpiredMediaUrl, Grant, check_media_url

CHUNK = 64 * 1024
_RANGE = re.compile(r"^(\d*)-(\d*)$")


class RangeNotSatisfiable(Exception):
    """The Range header asks for bytes the file does not have, or cannot be read."""


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """Return the inclusive byte span a ``Range`` header asks for, or None to send everything.

    A unit other than bytes and a list of several ranges are ignored (the whole file is a valid
    answer to both); a malformed or unsatisfiable byte range raises RangeNotSatisfiable.
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    match = _RANGE.match(spec.strip())
    if not match or match.groups() == ("", ""):
        raise RangeNotSatisfiable(header)
    first, last = match.groups()
    if first == "":  # the last n bytes
        length = int(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return max(0, size - length), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or (last != "" and int(last) < start):
        raise RangeNotSatisfiable(header)
    return start, end


def _read_span(handle, start: int, end: int):
    try:
        handle.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
    finally:
        handle.close()


def ranged_file_response(request, *, name: str) -> HttpResponse:
    """Return the stored file ``name``: whole (200), one byte range (206) or 416."""
    size = default_storage.size(name)
    try:
        modified = default_storage.get_modified_time(name).timestamp()
    except NotImplementedError:  # pragma: no cover - every local storage knows it
        modified = 0
    etag = f'"{int(modified * 1000):x}-{size:x}"'
    last_modified = http_date(modified)
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"

    span = None
    header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if header and (if_range is None or if_range.strip() in (etag, last_modified)):
        try:
            span = parse_range(header, size)
        except RangeNotSatisfiable:
            response = HttpResponse(
                json.dumps(error_body("range_not_satisfiable", f"The file has {size} bytes.")),
                status=416,
                content_type="application/json",
            )
            response["Content-Range"] = f"bytes */{size}"
            response["Accept-Ranges"] = "bytes"
            return response

    if request.method == "HEAD":
        response = HttpResponse(status=206 if span else 200, content_type=content_type)
        length = size if span is None else span[1] - span[0] + 1
        response["Content-Length"] = str(length)
    elif span is None:
        response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
    else:
        start, end = span
        response = StreamingHttpResponse(
            _read_span(default_storage.open(name, "rb"), start, end),
            status=206,
            content_type=content_type,
        )
        response["Content-Length"] = str(end - start + 1)
    if span is not None:
        response["Content-Range"] = f"bytes {span[0]}-{span[1]}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag
    response["Last-Modified"] = last_modified
    return response


def accel_response(*, name: str) -> HttpResponse:
    """Return an empty answer that tells nginx to send ``name`` from its internal location."""
    response = HttpResponse(content_type=mimetypes.guess_type(name)[0] or "")
    response["X-Accel-Redirect"] = settings.MEDIA_ACCEL_PREFIX + quote(name)
    return response


class _AnyAccept(BaseContentNegotiation):
    """Media answers are files, whatever the browser's Accept header; errors are JSON."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class MediaView(APIView):
    """A clip, poster, source video or export file, for the user its signed URL was issued to."""

    content_negotiation_class = _AnyAccept

    @extend_schema(exclude=True)
    def get(self, request: Request, name: str) -> HttpResponse:
        grant = _grant(request, name)
        if settings.MEDIA_ACCEL_REDIRECT:
            response = accel_response(name=grant.name)
        else:
            response = ranged_file_response(request, name=grant.name)
        if grant.download:
            filename = PurePosixPath(grant.name).name
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
        max_age = max(0, int(grant.expires - time.time()))
        response["Cache-Control"] = f"private, max-age={max_age}"
        return response


def _grant(request: Request, name: str) -> Grant:
    try:
        grant = check_media_url(name=name, query=request.query_params, user=request.user)
    except (BadMediaUrl, ExpiredMediaUrl) as exc:
        code = "expired" if isinstance(exc, ExpiredMediaUrl) else "permission_denied"
        raise PermissionDenied(str(exc), code=code) from None
    try:
        found = default_storage.exists(grant.name)
    except SuspiciousFileOperation:
        found = False
    if not found:
        raise NotFound("No such file.")
    return grant
