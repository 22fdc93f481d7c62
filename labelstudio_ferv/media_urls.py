"""Media URLs: the one place that turns a stored file's name into a URL a browser may fetch.

Clips, posters, source videos and export files are people's faces and their labels, so no media
file is public. A view that has decided a user may see a file (a member of a campaign holding the
clip, an export's campaign role) asks ``media_url(name, user=...)`` for it, and gets:

- on local storage, ``MEDIA_URL + name + ?e=<expiry>&s=<signature>``: an HMAC (``SECRET_KEY``)
  over the file name, the user's id, the expiry and the download flag. ``labelstudio_ferv.
  media_views`` answers it only for that logged-in user (session or token), only before the
  expiry; it streams the file itself (with HTTP Range) or, behind nginx, hands it to the proxy
  with ``X-Accel-Redirect``;
- on an S3 bucket, a presigned URL that expires after the same time (the bucket checks it; it is
  not tied to one user, only short-lived).

Expiries are rounded up to a step of a tenth of the lifetime, so the URL of one file stays the same
for a while and a browser's cache can reuse what it fetched.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import quote, urlencode

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import default_storage
from django.core.signing import Signer
from django.db.models.fields.files import FieldFile
from django.utils.crypto import constant_time_compare
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

_signer = Signer(salt="labelstudio_ferv.media")


def _payload(name: str, user_id: int, expires: int, download: bool) -> str:
    return f"{name}\n{user_id}\n{expires}\n{int(download)}"


def _expiry(now: float) -> int:
    ttl = settings.MEDIA_URL_TTL
    step = max(1, ttl // 10)
    return math.ceil((now + ttl) / step) * step


def media_url(name: str | FieldFile | None, *, user, download: bool = False) -> str | None:
    """Return a short-lived URL of a stored file for ``user`` (None for no file).

    Call it only after deciding that ``user`` may see the file. ``download`` makes the browser
    save the file under its own name instead of showing it.
    """
    if isinstance(name, FieldFile):
        name = name.name
    if not name:
        return None
    if user is None or not user.is_authenticated:
        raise ValueError("A media URL is issued to a logged-in user only.")
    if settings.MEDIA_PRESIGNED:
        # S3-compatible bucket (django-storages): the storage presigns with its querystring_expire.
        params = None
        if download:
            filename = PurePosixPath(name).name
            params = {"ResponseContentDisposition": f'attachment; filename="{filename}"'}
        return default_storage.url(name, parameters=params, expire=settings.MEDIA_URL_TTL)
    return _signed_url(settings.MEDIA_URL, name, user.pk, _expiry(time.time()), download)


# The same file for the same user gives the same URL until its expiry steps on, so the
# signature is kept: with a clip held ahead, every clip is handed out twice (ahead, then
# current), and signing took about 9% of an answer-and-next loop in `make bench-profile`.
@functools.lru_cache(maxsize=4096)
def _signed_url(prefix: str, name: str, user_id: int, expires: int, download: bool) -> str:
    query = {"e": expires, "s": _signer.signature(_payload(name, user_id, expires, download))}
    if download:
        query["dl"] = 1
    return f"{prefix}{quote(name)}?{urlencode(query)}"


@dataclass(frozen=True)
class Grant:
    """What a checked media URL allows: one file, for one user, until ``expires``."""

    name: str
    download: bool
    expires: int


class BadMediaUrl(Exception):
    """The URL was not issued to this user for this file (tampered, copied or made up)."""


class ExpiredMediaUrl(Exception):
    """The URL was issued to this user but its time is over."""


def check_media_url(*, name: str, query, user) -> Grant:
    """Return the grant carried by a media URL's query for ``user``, or raise why it is refused."""
    try:
        expires = int(query.get("e", ""))
    except ValueError:
        raise BadMediaUrl("This media link is not valid.") from None
    signature = query.get("s", "")
    download = query.get("dl") == "1"
    expected = _signer.signature(_payload(name, user.pk, expires, download))
    if not signature or not constant_time_compare(signature, expected):
        raise BadMediaUrl("This media link is not valid for you.")
    if expires < time.time():
        raise ExpiredMediaUrl("This media link has expired; reload the page for a new one.")
    return Grant(name=name, download=download, expires=expires)


def request_user(context: dict):
    """Return the user a serializer's output is for (its ``request`` in the context)."""
    request = context.get("request")
    if request is None:
        raise ImproperlyConfigured("Media URLs need the request in the serializer's context.")
    return request.user


@extend_schema_field(OpenApiTypes.STR)  # relative on local storage: not a "uri"
class MediaUrlField(serializers.Field):
    """A stored file (name or FieldFile) as a signed, short-lived URL for the requesting user."""

    def __init__(self, *, download: bool = False, **kwargs):
        self.download = download
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_representation(self, value) -> str | None:
        return media_url(value, user=request_user(self.context), download=self.download)
