"""The vendored front-end files are exactly the pinned versions listed in VERSIONS.txt."""

from __future__ import annotations

import hashlib
import re

from web.app import WEB_DIR


def test_vendored_files_match_versions_txt() -> None:
    vendor = WEB_DIR / "static" / "vendor"
    listed = re.findall(r"^\S+\s+\S+\s+\S+\s+(\S+)\s+([0-9a-f]{64})$", (vendor / "VERSIONS.txt").read_text(), re.M)
    assert {path for path, _ in listed} == {"pico/pico.min.css", "htmx/htmx.min.js"}
    for path, digest in listed:
        assert hashlib.sha256((vendor / path).read_bytes()).hexdigest() == digest, path
    assert (vendor / "pico" / "LICENSE.md").exists()
    assert (vendor / "htmx" / "LICENSE").exists()
