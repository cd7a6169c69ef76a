"""CSV for spreadsheets, made safe and streamed: cells a spreadsheet would run as a formula are defused.

A cell starting with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some spreadsheets skip before
reading a formula) is prefixed with an apostrophe, as OWASP's CSV injection guidance recommends: the value reads
the same to a person and is never evaluated.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def defuse(value: object) -> str:
    """The value as CSV cell text, with a leading apostrophe when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_chunks(header: Iterable[str], rows: Iterable[Iterable[object]], *, rows_per_chunk: int = 500) -> Iterator[str]:
    """The header and rows as CSV text, a chunk of rows at a time (for a streamed response), every cell defused."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([defuse(name) for name in header])
    pending = 0
    for row in rows:
        writer.writerow([defuse(cell) for cell in row])
        pending += 1
        if pending >= rows_per_chunk:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()
