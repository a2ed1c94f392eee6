"""Regenerate every benchmark report's plot from its report.json (plots are not committed).

python benchmarks/plots.py [--root benchmarks/results]      # or: make plots
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmbff.report import plot_report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    reports = sorted(args.root.rglob("report.json"))
    for report in reports:
        rows = json.loads(report.read_text())
        if isinstance(rows, list) and rows and "mean" in rows[0]:
            print(plot_report(rows, report.with_name("report.png")))
        elif isinstance(rows, list) and rows and "to_teacher" in rows[0]:  # benchmarks/deploy.py's
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from deploy import plot

            print(plot(rows, report.with_name("report.png")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
