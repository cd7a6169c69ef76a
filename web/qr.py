"""QR codes drawn on the server as inline SVG (segno): nothing is fetched, and no script draws them."""

from __future__ import annotations

import segno
from markupsafe import Markup


def qr_svg(text: str, *, title: str) -> Markup:
    """A QR code of text as inline SVG (segno), dark on white so a phone reads it in dark mode too."""
    code = segno.make(text, error="m")
    svg = code.svg_inline(scale=4, border=4, dark="#000", light="#fff", title=title, svgclass="qr-code", omitsize=True)
    return Markup(svg)  # noqa: S704 - segno's own markup; it escapes the title, and the data is only path geometry
