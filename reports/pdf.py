"""PDF rendering with WeasyPrint behind a URL fetcher that serves only data: URLs and the bundled report assets."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit
from urllib.request import url2pathname

from weasyprint import HTML
from weasyprint.urls import UNICODE_SCHEME_RE, FatalURLFetchingError, URLFetcher, URLFetcherResponse

logger = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
ASSET_TYPES: dict[str, str] = {
    ".css": "text/css; charset=utf-8",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".woff2": "font/woff2",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
MAX_ASSET_BYTES = 8 * 1024 * 1024
MAX_DATA_URL_BYTES = 2 * 1024 * 1024
_LOGGED_URL_CHARS = 200


@dataclass(frozen=True)
class RefusedFetch:
    """A URL the fetcher would not serve, and why."""

    url: str
    reason: str


class RefusedResourceError(Exception):
    """Rendering asked for a resource outside the allowed set; the PDF was not produced."""

    def __init__(self, refused: Sequence[RefusedFetch]) -> None:
        self.refused = tuple(refused)
        listed = "; ".join(f"{r.url} ({r.reason})" for r in self.refused[:5])
        more = f" and {len(self.refused) - 5} more" if len(self.refused) > 5 else ""
        super().__init__(f"refused to fetch {len(self.refused)} resource(s): {listed}{more}")


class SafeURLFetcher(URLFetcher):  # type: ignore[misc]  # WeasyPrint ships no type information
    """Serve data: URLs and regular files under the assets folder; refuse and record everything else.

    Refusals are logged and kept in ``refused``; with ``fail_closed`` (the default) WeasyPrint stops rendering at
    the first one. Nothing here opens a socket: the parent class's network handlers are never reached.
    """

    def __init__(self, assets_dir: Path = ASSETS_DIR, *, fail_closed: bool = True) -> None:
        super().__init__(
            timeout=1,
            allowed_protocols={"data", "file"},
            allow_redirects=False,
            fail_on_errors=fail_closed,
        )
        self.assets_dir = assets_dir.resolve(strict=True)
        self.fail_closed = fail_closed
        self.refused: list[RefusedFetch] = []
        self.served: list[str] = []

    def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> URLFetcherResponse:
        """Return the resource for an allowed URL, or record the refusal and raise."""
        match = UNICODE_SCHEME_RE.match(url)
        scheme = match[1].lower() if match else ""
        if scheme == "data":
            return self._data(url)
        if scheme == "file":
            return self._asset(url)
        return self._refuse(url, f"scheme {scheme or '(none)'!r} is not allowed")

    def _refuse(self, url: str, reason: str) -> URLFetcherResponse:
        shown = url if len(url) <= _LOGGED_URL_CHARS else url[:_LOGGED_URL_CHARS] + "..."
        self.refused.append(RefusedFetch(shown, reason))
        logger.warning("report renderer refused %s: %s", shown, reason)
        if self.fail_closed:
            raise FatalURLFetchingError(f"refused {shown}: {reason}")
        raise ValueError(f"refused {shown}: {reason}")

    def _data(self, url: str) -> URLFetcherResponse:
        header, sep, payload = url[len("data:") :].partition(",")
        if not sep:
            return self._refuse(url, "malformed data: URL")
        params = [p.strip() for p in header.split(";")]
        is_base64 = len(params) > 1 and params[-1].lower() == "base64"
        if is_base64:
            params = params[:-1]
        mime = params[0].lower() if params and params[0] else "text/plain"
        raw = unquote_to_bytes(payload)
        try:
            body = base64.b64decode(raw, validate=False) if is_base64 else raw
        except (binascii.Error, ValueError):
            return self._refuse(url, "malformed base64 in data: URL")
        if len(body) > MAX_DATA_URL_BYTES:
            return self._refuse(url, "data: URL too large")
        content_type = "; ".join([mime, *params[1:]])
        self.served.append("data:" + mime)
        return URLFetcherResponse(url, body=body, headers={"Content-Type": content_type})

    def _asset(self, url: str) -> URLFetcherResponse:
        # _refuse raises: keep it out of the try blocks so one refusal is recorded once.
        try:
            parts = urlsplit(url)
            netloc = parts.netloc
            path: Path | None = Path(url2pathname(parts.path)).resolve(strict=False)
        except (ValueError, OSError):
            netloc, path = "", None
        if path is None:
            return self._refuse(url, "malformed file: URL")
        if netloc not in ("", "localhost"):
            return self._refuse(url, "file: URL names a host")
        if not path.is_relative_to(self.assets_dir):
            return self._refuse(url, "outside the report assets folder")
        content_type = ASSET_TYPES.get(path.suffix.lower())
        if content_type is None:
            return self._refuse(url, f"asset type {path.suffix or '(none)'!r} is not allowed")
        if not path.is_file():
            return self._refuse(url, "no such asset")
        try:
            size = path.stat().st_size
            body = path.read_bytes() if size <= MAX_ASSET_BYTES else None
        except OSError as exc:
            return self._refuse(url, f"cannot read asset: {exc.strerror or type(exc).__name__}")
        if body is None:
            return self._refuse(url, "asset too large")
        self.served.append(path.relative_to(self.assets_dir).as_posix())
        return URLFetcherResponse(path.as_uri(), body=body, headers={"Content-Type": content_type})


def assets_base_url(assets_dir: Path = ASSETS_DIR) -> str:
    """Return the file: URL of the assets folder (with its trailing slash) for resolving relative references."""
    return assets_dir.resolve().as_uri() + "/"


def render_pdf(
    html: str,
    *,
    base_url: str | None = None,
    fetcher: SafeURLFetcher | None = None,
    strict: bool = True,
) -> bytes:
    """Render HTML to PDF, fetching only through a SafeURLFetcher; strict raises RefusedResourceError on a refusal.

    ``base_url`` defaults to the assets folder, so ``href="report.css"`` and ``url(fonts/...)`` resolve there.
    Pass your own fetcher to inspect ``fetcher.refused`` and ``fetcher.served`` afterwards.
    """
    if fetcher is None:
        fetcher = SafeURLFetcher(fail_closed=strict)
    document = HTML(string=html, base_url=base_url or assets_base_url(), url_fetcher=fetcher)
    try:
        pdf: bytes = document.write_pdf()
    except FatalURLFetchingError as exc:
        # FatalURLFetchingError is a BaseException: turn it into an ordinary error for callers and task runners.
        raise RefusedResourceError(fetcher.refused or [RefusedFetch("?", str(exc))]) from exc
    if strict and fetcher.refused:
        # Some WeasyPrint paths (SVG drawing) swallow fetch errors, so check the log as well.
        raise RefusedResourceError(fetcher.refused)
    return pdf
