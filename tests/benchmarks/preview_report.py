"""Render the sample monthly report to var/preview/ (PDF, HTML and one PNG per page) so a person can look at it.

Usage: .venv/bin/python tests/benchmarks/preview_report.py [--seed N] [--clinicians N] [--dpi N]
Needs poppler-utils (pdftoppm) for the PNG pages.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from reports.monthly import render_monthly_html, sample_monthly_data  # noqa: E402
from reports.pdf import SafeURLFetcher, render_pdf  # noqa: E402


def main() -> None:
    """Write var/preview/monthly.{html,pdf} and page-NN.png, and print timings as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clinicians", type=int, default=8)
    parser.add_argument("--dpi", type=int, default=80)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "preview")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    data = sample_monthly_data(args.seed, clinicians=args.clinicians)
    built = time.perf_counter()
    html = render_monthly_html(data)
    templated = time.perf_counter()
    fetcher = SafeURLFetcher()
    pdf = render_pdf(html, fetcher=fetcher)
    rendered = time.perf_counter()

    (args.out / "monthly.html").write_text(html, encoding="utf-8")
    pdf_path = args.out / "monthly.pdf"
    pdf_path.write_bytes(pdf)
    for old in args.out.glob("page-*.png"):
        old.unlink()
    pages = 0
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-r", str(args.dpi), "-png", str(pdf_path), str(args.out / "page")], check=True)
        pages = len(list(args.out.glob("page-*.png")))
    else:
        print("pdftoppm not found: install poppler-utils for PNG pages", file=sys.stderr)
    print(
        json.dumps(
            {
                "pdf": str(pdf_path),
                "png_pages": pages,
                "pdf_bytes": len(pdf),
                "data_s": round(built - started, 3),
                "html_s": round(templated - built, 3),
                "pdf_s": round(rendered - templated, 3),
                "served": fetcher.served,
                "refused": [r.url for r in fetcher.refused],
            }
        )
    )


if __name__ == "__main__":
    main()
