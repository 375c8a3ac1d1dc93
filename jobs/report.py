"""`python -m jobs.report OUTPUT`: rebuild report.html from a finished output (a directory or URI).

Exit codes: 0 written (its location printed); 2 OUTPUT is not a finished output, or lacks a file the
report needs (one line on stderr names it).
"""

from __future__ import annotations

import argparse
import sys

from cluster.outputs import MARKER, Output
from cluster.storage import redact

EXIT_OK, EXIT_USAGE = 0, 2


def main(argv: list[str] | None = None) -> int:
    """Parse, check the output is finished, write its report."""
    parser = argparse.ArgumentParser(prog="python -m jobs.report",
                                     description="Rebuild report.html from a finished evaluation output.")
    parser.add_argument("output", help="the output location: a directory or URI holding a finished run")
    location = parser.parse_args(argv).output
    out = Output(location)
    if not out.finished():
        print(f"error: {redact(out.location)} is not a finished output (no {MARKER}): nothing to report",
              file=sys.stderr)
        return EXIT_USAGE
    from cluster.report import write_report  # plotly's import is slow: only once there is something to draw
    try:
        print(redact(write_report(location)))
    except FileNotFoundError as e:
        print(f"error: {redact(out.location)} lacks a file the report needs: {e}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
