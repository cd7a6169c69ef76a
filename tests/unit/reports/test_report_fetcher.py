"""The PDF renderer's URL fetcher: only data: URLs and the bundled assets, everything else refused and recorded."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from weasyprint import HTML
from weasyprint.urls import FatalURLFetchingError, URLFetcher

from reports.pdf import ASSETS_DIR, RefusedResourceError, SafeURLFetcher, assets_base_url, render_pdf

PASSWD_MARK = b"root:x:0:0"
BASE = assets_base_url()


def hostile_html(port: int, secret: Path | None = None) -> str:
    """Unescaped HTML that tries every way WeasyPrint could read a file or open a connection."""
    target = secret.as_uri() if secret else "file:///etc/passwd"
    return f"""<!DOCTYPE html><html><head>
<link rel="stylesheet" href="http://127.0.0.1:{port}/sheet.css">
<link rel="attachment" href="{target}" title="passwd">
<link rel="attachment" href="../../../../../../etc/passwd">
<style>
@import url(http://127.0.0.1:{port}/import.css);
@font-face {{ font-family: x; src: url(http://127.0.0.1:{port}/font.ttf), url(file:///etc/passwd); }}
body {{ background: url(http://127.0.0.1:{port}/bg.png); }}
p::after {{ content: url(https://127.0.0.1:{port}/after.png); }}
</style></head><body>
<p>Visible text</p>
<img src="{target}"><img src="../../../../../../etc/passwd"><img src="ftp://127.0.0.1:{port}/x.png">
<object data="{target}"></object><embed src="{target}">
<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><image href="{target}" width="10" height="10"/>
<image href="http://127.0.0.1:{port}/svg.png" width="10" height="10"/></svg>
</body></html>"""


def test_fetcher_serves_bundled_assets_and_data_urls() -> None:
    fetcher = SafeURLFetcher()
    css = fetcher.fetch(urljoin(BASE, "report.css"))
    assert css.content_type == "text/css"
    assert b"@page" in css.read()
    font = fetcher.fetch(urljoin(BASE, "fonts/DejaVuSans.ttf"))
    assert font.read(4) == b"\x00\x01\x00\x00"  # a TrueType font
    data = fetcher.fetch("data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode())
    assert data.read() == b"\x89PNG fake"
    assert data.content_type == "image/png"
    plain = fetcher.fetch("data:,a%20b")
    assert plain.read() == b"a b"
    assert fetcher.served == ["report.css", "fonts/DejaVuSans.ttf", "data:image/png", "data:text/plain"]
    assert fetcher.refused == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "outside the report assets folder"),
        (urljoin(BASE, "../../../../../../etc/passwd"), "outside the report assets folder"),
        (BASE + "fonts/../../../../../../../etc/passwd", "outside the report assets folder"),
        (BASE + "%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "outside the report assets folder"),
        (BASE + "..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd", "outside the report assets folder"),
        ("file://evil.example/etc/passwd", "file: URL names a host"),
        (urljoin(BASE, "fonts/LICENSE.txt"), "asset type '.txt' is not allowed"),
        (urljoin(BASE, "missing.css"), "no such asset"),
        ("http://127.0.0.1:9/x", "scheme 'http' is not allowed"),
        ("https://example.invalid/x.css", "scheme 'https' is not allowed"),
        ("ftp://127.0.0.1/x", "scheme 'ftp' is not allowed"),
        ("javascript:alert(1)", "scheme 'javascript' is not allowed"),
        ("report.css", "scheme '(none)' is not allowed"),
        ("data:text/plain;base64", "malformed data: URL"),
    ],
)
def test_fetcher_refuses_and_records(url: str, reason: str) -> None:
    closed = SafeURLFetcher()
    with pytest.raises(FatalURLFetchingError):
        closed.fetch(url)
    assert [r.reason for r in closed.refused] == [reason]
    assert closed.served == []
    open_ = SafeURLFetcher(fail_closed=False)
    with pytest.raises(ValueError, match="refused"):
        open_.fetch(url)
    assert len(open_.refused) == 1


def test_symlink_inside_assets_pointing_outside_is_refused(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    outside = tmp_path / "secret.css"
    outside.write_text("body { color: red }")
    (assets / "innocent.css").symlink_to(outside)
    (assets / "real.css").write_text("p {}")
    fetcher = SafeURLFetcher(assets, fail_closed=False)
    assert fetcher.fetch((assets / "real.css").as_uri()).read() == b"p {}"
    with pytest.raises(ValueError, match="outside the report assets folder"):
        fetcher.fetch((assets / "innocent.css").as_uri())


@pytest.mark.sockets
def test_render_refuses_every_hostile_reference_and_fetches_nothing(listener: Any, pdf_inspector: Any) -> None:
    fetcher = SafeURLFetcher(fail_closed=False)
    pdf = render_pdf(hostile_html(listener.port), fetcher=fetcher, strict=False)
    assert "Visible text" in pdf_inspector.text(pdf)
    assert pdf_inspector.attachments(pdf) == 0
    assert PASSWD_MARK not in pdf_inspector.all_bytes(pdf)
    assert listener.count() == 0
    refused = {r.url for r in fetcher.refused}
    port = listener.port
    for expected in (
        f"http://127.0.0.1:{port}/sheet.css",
        f"http://127.0.0.1:{port}/import.css",
        f"http://127.0.0.1:{port}/font.ttf",
        f"http://127.0.0.1:{port}/bg.png",
        f"https://127.0.0.1:{port}/after.png",
        f"ftp://127.0.0.1:{port}/x.png",
        "file:///etc/passwd",
    ):
        assert expected in refused, expected
    assert fetcher.served == []


@pytest.mark.sockets
def test_strict_render_fails_closed(listener: Any) -> None:
    with pytest.raises(RefusedResourceError) as caught:
        render_pdf(hostile_html(listener.port))
    assert caught.value.refused
    assert listener.count() == 0


@pytest.mark.sockets
def test_svg_image_refusal_still_fails_a_strict_render(listener: Any) -> None:
    # WeasyPrint swallows errors while drawing SVG, so the fetcher's log is checked after rendering as well.
    html = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        f'<image href="http://127.0.0.1:{listener.port}/svg.png" width="10" height="10"/></svg>'
    )
    with pytest.raises(RefusedResourceError, match=r"svg\.png"):
        render_pdf(html)
    assert listener.count() == 0


@pytest.mark.sockets
def test_controls_the_checks_detect_an_unsafe_renderer(tmp_path: Path, listener: Any, pdf_inspector: Any) -> None:
    """WeasyPrint's own fetcher on the same HTML connects and embeds the file: the checks above can fail."""
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0:control-secret\n")
    pdf = HTML(string=hostile_html(listener.port, secret), base_url=BASE, url_fetcher=URLFetcher(timeout=2)).write_pdf()
    assert pdf_inspector.attachments(pdf) >= 1
    assert PASSWD_MARK in pdf_inspector.all_bytes(pdf)
    assert listener.count() >= 1


def test_assets_folder_holds_fonts_and_their_licence() -> None:
    fonts = sorted(p.name for p in (ASSETS_DIR / "fonts").glob("*.ttf"))
    assert "DejaVuSans.ttf" in fonts
    assert "DejaVuSans-Bold.ttf" in fonts
    licence = (ASSETS_DIR / "fonts" / "LICENSE.txt").read_text()
    assert "Bitstream Vera Fonts Copyright" in licence
    assert "Arev Fonts Copyright" in licence
    css = (ASSETS_DIR / "report.css").read_text()
    for font in fonts:
        assert f"url(fonts/{font})" in css
