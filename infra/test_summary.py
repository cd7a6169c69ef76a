"""Print per-tier test counts from JUnit XML files and one closing total line."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(paths: list[str]) -> int:
    """Summarise; exit 1 when any tier failed or ran nothing."""
    passed = failed = skipped = 0
    ok = True
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            print(f"{path.stem}: no results (the tier did not run)")
            ok = False
            continue
        root = ET.parse(path).getroot()  # noqa: S314
        suites = [root] if root.tag == "testsuite" else list(root)
        tests = sum(int(s.get("tests", 0)) for s in suites)
        fails = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
        skips = sum(int(s.get("skipped", 0)) for s in suites)
        tier_passed = tests - fails - skips
        print(f"{path.stem} tier: {tier_passed} passed, {fails} failed, {skips} skipped")
        passed, failed, skipped = passed + tier_passed, failed + fails, skipped + skips
        ok = ok and fails == 0 and tier_passed > 0
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
