"""Media files through their signed URLs: who may fetch them, for how long, and HTTP Range."""

import time
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from annotations.models import ExportJob
from tests.factories import ClipFactory, TaskFactory

pytestmark = pytest.mark.django_db

# Distinct bytes at every offset, so a wrong span cannot pass for the right one.
VIDEO = bytes(range(256)) * 40 + b"tail"
SIZE = len(VIDEO)


@pytest.fixture
def clip_task(campaign):
    name = default_storage.save("clips/media-test.mp4", ContentFile(VIDEO))
    poster = default_storage.save("posters/media-test.jpg", ContentFile(b"\xff\xd8\xff poster"))
    clip = ClipFactory(video=name, poster=poster)
    task = TaskFactory(campaign=campaign, clip=clip)
    yield task
    default_storage.delete(name)
    default_storage.delete(poster)


def offered(api, user, campaign) -> dict:
    response = api(user).post(f"/api/v1/campaigns/{campaign.pk}/next/")
    assert response.status_code == 200, response.content
    return response.json()["clip"]


def fetch(api, user, url, **headers):
    client = api(user)
    return client.get(url, **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_urls_are_signed_and_serve_the_file_to_their_user(api, campaign, alice, clip_task):
    clip = offered(api, alice, campaign)
    url = clip["video_url"]
    parts = urlsplit(url)
    assert parts.path == "/media/clips/media-test.mp4"
    assert set(parse_qs(parts.query)) == {"e", "s"}
    response = fetch(api, alice, url)
    assert response.status_code == 200
    assert body(response) == VIDEO
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "video/mp4"
    assert response["Cache-Control"].startswith("private, max-age=")
    poster = fetch(api, alice, clip["poster_url"])
    assert poster.status_code == 200 and body(poster).startswith(b"\xff\xd8\xff")
    # The name alone, as before, answers nothing.
    bare = fetch(api, alice, parts.path)
    assert bare.status_code == 403
    assert bare.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=100-200", (100, 200)),
        ("bytes=0-0", (0, 0)),
        ("bytes=100-", (100, SIZE - 1)),
        ("bytes=-50", (SIZE - 50, SIZE - 1)),
        (f"bytes=10-{SIZE + 1000}", (10, SIZE - 1)),  # the end is clamped to the file
        (f"bytes=-{SIZE * 2}", (0, SIZE - 1)),
    ],
)
def test_a_range_answers_206_with_exactly_those_bytes(
    api, campaign, alice, clip_task, header, span
):
    url = offered(api, alice, campaign)["video_url"]
    response = fetch(api, alice, url, Range=header)
    assert response.status_code == 206
    start, end = span
    assert response["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
    assert response["Content-Length"] == str(end - start + 1)
    assert body(response) == VIDEO[start : end + 1]


@pytest.mark.parametrize(
    "header", [f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 9}", "bytes=200-100", "bytes=-0",
               "bytes=abc", "bytes=-", "bytes=1-2-3"],
)  # fmt: skip
def test_a_bad_range_answers_416(api, campaign, alice, clip_task, header):
    url = offered(api, alice, campaign)["video_url"]
    response = fetch(api, alice, url, Range=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{SIZE}"
    assert response.json()["error"]["code"] == "range_not_satisfiable"


@pytest.mark.parametrize("header", ["items=0-10", "bytes=0-1,5-6"])
def test_ranges_it_does_not_serve_get_the_whole_file(api, campaign, alice, clip_task, header):
    url = offered(api, alice, campaign)["video_url"]
    response = fetch(api, alice, url, Range=header)
    assert response.status_code == 200 and body(response) == VIDEO


def test_if_range_with_a_stale_validator_gets_the_whole_file(api, campaign, alice, clip_task):
    url = offered(api, alice, campaign)["video_url"]
    etag = fetch(api, alice, url)["ETag"]
    fresh = fetch(api, alice, url, Range="bytes=0-9", **{"If-Range": etag})
    assert fresh.status_code == 206 and body(fresh) == VIDEO[:10]
    stale = fetch(api, alice, url, Range="bytes=0-9", **{"If-Range": '"other"'})
    assert stale.status_code == 200 and body(stale) == VIDEO


def test_head_tells_the_size_without_the_bytes(api, campaign, alice, clip_task):
    url = offered(api, alice, campaign)["video_url"]
    response = api(alice).head(url, HTTP_RANGE="bytes=0-99")
    assert response.status_code == 206
    assert response["Content-Length"] == "100" and response.content == b""


def tampered(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    path = changes.pop("path", parts.path)
    query.pop("path", None)
    return urlunsplit(
        parts._replace(path=path, query="&".join(f"{k}={v}" for k, v in query.items()))
    )


def test_a_changed_url_is_refused(api, campaign, alice, clip_task):
    clip = offered(api, alice, campaign)
    url = clip["video_url"]
    sig = parse_qs(urlsplit(url).query)["s"][0]
    e = int(parse_qs(urlsplit(url).query)["e"][0])
    flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    for bad in (
        tampered(url, s=flipped),
        tampered(url, e=e + 3600),  # a longer life
        tampered(url, dl=1),  # a download it was not issued for
        tampered(url, e="soon"),
        tampered(url, path="/media/posters/media-test.jpg"),  # another file, same signature
        tampered(clip["poster_url"], path=urlsplit(url).path),
    ):
        response = fetch(api, alice, bad)
        assert response.status_code == 403, bad
        assert response.json()["error"]["code"] == "permission_denied"
    assert fetch(api, alice, url).status_code == 200


def test_a_url_works_only_for_its_user(api, campaign, alice, bob, stranger, clip_task):
    url = offered(api, alice, campaign)["video_url"]
    for other in (bob, stranger):  # another member, and someone outside the campaign
        response = fetch(api, other, url)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
    logged_out = fetch(api, None, url)
    assert logged_out.status_code == 401
    assert logged_out.json()["error"]["code"] == "not_authenticated"
    assert fetch(api, alice, url).status_code == 200


def test_a_browser_session_is_the_user_too(client, campaign, alice, clip_task, api):
    url = offered(api, alice, campaign)["video_url"]
    client.force_login(alice)
    assert client.get(url, HTTP_RANGE="bytes=0-3").status_code == 206


def test_a_url_expires(api, settings, campaign, alice, clip_task):
    settings.MEDIA_URL_TTL = 1
    url = offered(api, alice, campaign)["video_url"]
    assert fetch(api, alice, url).status_code == 200
    time.sleep(2.1)
    response = fetch(api, alice, url)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "expired"
    # Asking the API again gives a fresh link.
    again = api(alice).get(f"/api/v1/campaigns/{campaign.pk}/last-answer/")
    assert again.status_code == 204  # nothing answered yet: the offer is the way back
    fresh = offered(api, alice, campaign)["video_url"]
    assert fetch(api, alice, fresh).status_code == 200


def test_a_stranger_to_the_campaign_gets_no_url(api, campaign, stranger, clip_task):
    response = api(stranger).post(f"/api/v1/campaigns/{campaign.pk}/next/")
    assert response.status_code == 404
    assert "media" not in response.content.decode()


def test_a_missing_file_answers_404_in_the_error_shape(api, campaign, alice, clip_task):
    url = offered(api, alice, campaign)["video_url"]
    default_storage.delete(clip_task.clip.video.name)
    response = fetch(api, alice, url)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_behind_nginx_the_app_hands_the_file_over(api, settings, campaign, alice, clip_task):
    settings.MEDIA_ACCEL_REDIRECT = True
    url = offered(api, alice, campaign)["video_url"]
    response = fetch(api, alice, url, Range="bytes=0-9")
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == "/_protected_media/clips/media-test.mp4"
    assert response["Content-Type"] == "video/mp4"
    # The check still happens first.
    refused = fetch(api, alice, tampered(url, s="x"))
    assert refused.status_code == 403 and "X-Accel-Redirect" not in refused


def test_review_clips_are_signed_for_the_reviewer(api, campaign, rita, adam, clip_task):
    item = api(rita).get(f"/api/v1/campaigns/{campaign.pk}/review/tasks/{clip_task.pk}/")
    assert item.status_code == 200, item.content
    url = item.json()["clip"]["video_url"]
    assert "s=" in url
    assert body(fetch(api, rita, url, Range="bytes=5-9")) == VIDEO[5:10]
    assert fetch(api, adam, url).status_code == 403


def test_export_files_download_for_their_role_only(api, campaign, rita, adam, alice):
    job = ExportJob.objects.create(
        campaign=campaign, kind=ExportJob.Kind.LABELS, status=ExportJob.Status.DONE,
        file=default_storage.save("exports/media-test.csv", ContentFile(b"clip_id,label\n1,3\n")),
    )  # fmt: skip
    url = f"/api/v1/campaigns/{campaign.pk}/exports/{job.pk}/"
    link = api(rita).get(url).json()["download_url"]
    assert link.startswith("http://testserver/media/exports/")
    response = fetch(api, rita, link)
    assert response.status_code == 200
    assert body(response) == b"clip_id,label\n1,3\n"
    assert (
        response["Content-Disposition"]
        == 'attachment; filename="' + job.file.name.split("/")[-1] + '"'
    )
    assert fetch(api, adam, link).status_code == 403  # an admin has their own link
    assert fetch(api, adam, api(adam).get(url).json()["download_url"]).status_code == 200
    assert api(alice).get(url).status_code == 403  # annotators get no export at all
    assert fetch(api, alice, link).status_code == 403
    default_storage.delete(job.file.name)
