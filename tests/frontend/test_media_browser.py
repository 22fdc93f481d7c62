"""The production shape plays video: the real nginx, with the project's own config, in front of
gunicorn with DEBUG off, and headless Chromium playing and frame-stepping a clip through it.
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings

from annotations.models import Role
from clips import ffmpeg, synthetic
from tests.conftest import ROOT, ServerProcess, free_port
from tests.factories import ClipFactory, MembershipFactory, TaskFactory, UserFactory

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update",
]  # fmt: skip
FPS = 25


class ProxyProcess:
    """nginx started by deploy/proxy-entrypoint.sh, every path in a temporary folder."""

    def __init__(self, *, upstream: str, folder: Path):
        self.folder = folder
        self.https_port = free_port()
        self.http_port = free_port()
        self.env = {
            **os.environ,
            "PATH": os.environ.get("PATH", "") + ":/usr/sbin",
            "NGINX_CONF_DIR": str(folder), "NGINX_RUN_DIR": str(folder / "run"),
            "NGINX_ACCESS_LOG": str(folder / "access.log"), "NGINX_USER": getpass.getuser(),
            "LSF_UPSTREAM": upstream, "LSF_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "LSF_HTTP_PORT": f"127.0.0.1:{self.http_port}",
            "LSF_HTTPS_PORT": f"127.0.0.1:{self.https_port}",
            "LSF_PUBLIC_HTTPS_PORT": str(self.https_port),
            "LSF_TLS_CERT": str(folder / "tls.crt"), "LSF_TLS_KEY": str(folder / "tls.key"),
        }  # fmt: skip
        self.log = folder / "nginx.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def start(self) -> ProxyProcess:
        self.proc = subprocess.Popen(
            [str(ROOT / "deploy" / "proxy-entrypoint.sh")], env=self.env,
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.https_port), timeout=1):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"nginx did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


@pytest.fixture
def production(live_db, tmp_path):
    """gunicorn with DEBUG off behind nginx, which terminates TLS and serves the media."""
    app = ServerProcess(
        DJANGO_DEBUG="0", SECRET_KEY="production-shape-test-" + "k" * 40, DJANGO_HTTPS="1",
        # nginx redirects plain HTTP; the app's own redirect would only turn away the health
        # probe that ServerProcess sends to gunicorn directly.
        SECURE_SSL_REDIRECT="0", STATIC_MANIFEST="0", MEDIA_ACCEL_REDIRECT="1",
        CELERY_TASK_ALWAYS_EAGER="1",
    ).start()  # fmt: skip
    proxy = None
    try:
        proxy = ProxyProcess(upstream=f"127.0.0.1:{app.port}", folder=tmp_path).start()
        yield proxy
    finally:
        if proxy:
            proxy.stop()
        app.stop()


@pytest.fixture
def clip_on_disk():
    """A real 2-second H.264 clip at 25 fps and its poster in MEDIA_ROOT."""
    folder = Path(settings.MEDIA_ROOT) / "clips"
    folder.mkdir(parents=True, exist_ok=True)
    video, poster = folder / "browser-media.mp4", Path(settings.MEDIA_ROOT) / "browser-media.jpg"
    synthetic.make_test_video(video, seconds=2.0, size=(320, 240), fps=FPS, pattern="testsrc2")
    subprocess.run(
        [ffmpeg.ffmpeg_binary(), "-loglevel", "error", "-y", "-i", str(video), "-frames:v", "1",
         str(poster)],
        check=True,
    )  # fmt: skip
    return video, poster


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def logged_in(browser, base: str, username: str):
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-for-tests")
    page.press("#id_password", "Enter")
    page.wait_for_url(base + "/")
    return context, page


def video_js(body: str) -> str:
    return f"() => {{ const v = document.getElementById('video'); {body} }}"


def test_a_clip_plays_seeks_and_steps_through_nginx_with_debug_off(
    production, browser, campaign, clip_on_disk
):
    video_file, poster_file = clip_on_disk
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    for user in (alice, bob):
        MembershipFactory(campaign=campaign, user=user, role=Role.ANNOTATOR)
    clip = ClipFactory(
        video=str(video_file.relative_to(settings.MEDIA_ROOT)),
        poster=str(poster_file.relative_to(settings.MEDIA_ROOT)),
        duration_s=2.0, fps=float(FPS), frame_count=2 * FPS, width=320, height=240,
    )  # fmt: skip
    TaskFactory(campaign=campaign, clip=clip)
    base = production.url

    context, page = logged_in(browser, base, "alice")
    try:
        page.goto(f"{base}/campaigns/{campaign.pk}/annotate/")
        page.wait_for_function(video_js("return v && v.readyState >= 2 && v.seekable.length > 0;"))
        src = page.evaluate(video_js("return v.currentSrc;"))
        assert src.startswith(f"{base}/media/clips/browser-media.mp4?e=")
        seekable = page.evaluate(video_js("return [v.seekable.start(0), v.seekable.end(0)];"))
        assert seekable[0] == 0 and seekable[1] >= 1.9

        # Pause at 0.48 s, then the right arrow (one frame forward), as an annotator would.
        page.evaluate(
            video_js("""v.pause(); v.currentTime = 0.48;
            return new Promise(r => v.addEventListener('seeked', r, {once: true}));""")
        )
        before = page.evaluate(video_js("return v.currentTime;"))
        assert before == pytest.approx(0.48, abs=0.001)
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "(t) => { const v = document.getElementById('video');"
            " return v.currentTime !== t && !v.seeking && v.readyState >= 2; }",
            arg=before,
        )
        after = page.evaluate(video_js("return v.currentTime;"))
        assert after - before == pytest.approx(1 / FPS, abs=0.005), (before, after)
        assert page.evaluate(video_js("return v.paused;"))

        # The bytes came from nginx (the app answers an empty body behind it), with Range.
        data = video_file.read_bytes()
        ranged = context.request.get(src, headers={"Range": "bytes=100-200"})
        assert ranged.status == 206
        assert ranged.headers["content-range"] == f"bytes 100-200/{len(data)}"
        assert ranged.body() == data[100:201]
        whole = context.request.get(src)
        assert whole.status == 200 and whole.body() == data
        assert whole.headers["accept-ranges"] == "bytes"
        assert whole.headers["content-type"] == "video/mp4"
        assert whole.headers["cache-control"].startswith("private, max-age=")
        assert "x-accel-redirect" not in whole.headers
        bad = context.request.get(src, headers={"Range": f"bytes={len(data)}-"})
        assert bad.status == 416
        # The internal location is not reachable from outside.
        assert context.request.get(base + "/_protected_media/clips/browser-media.mp4").status == 404
    finally:
        context.close()

    # The same URL for someone else, or for no one, answers in the JSON error shape.
    other, _ = logged_in(browser, base, "bob")
    try:
        copied = other.request.get(src)
        assert copied.status == 403 and copied.json()["error"]["code"] == "permission_denied"
    finally:
        other.close()
    anonymous = browser.new_context(ignore_https_errors=True)
    try:
        response = anonymous.request.get(src)
        assert response.status == 401 and response.json()["error"]["code"] == "not_authenticated"
        # Plain HTTP is redirected to HTTPS by the proxy.
        plain = anonymous.request.get(
            f"http://127.0.0.1:{production.http_port}/login/", max_redirects=0
        )
        assert plain.status == 301
        assert plain.headers["location"] == f"{base}/login/"
    finally:
        anonymous.close()
