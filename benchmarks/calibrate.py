"""Calibrate the roofline against this device (see benchmarks/README.md).

    python benchmarks/calibrate.py --size tiny        # about a minute on a 2-core CPU
    python benchmarks/calibrate.py --quick            # same as --size tiny
    python benchmarks/calibrate.py --size small -v    # every kernel: measured vs model

Prints the per-family table of median and worst |model/measured - 1| on the held-apart
split, before (Efficiency.default()) and after calibration, with the ratio after/before
(the baseline is the uncalibrated model measured in the same run); writes
benchmarks/results/calibrate.json, the calibration TOML and (CPU) the host catalog entry.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from perfmodel import calibrate  # noqa: E402
from perfmodel.commands.calibrate import add_arguments  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap)
    ap.add_argument("--quick", action="store_true", help="fast run: --size tiny")
    ap.set_defaults(json_out=str(ROOT / "benchmarks" / "results" / "calibrate.json"))
    args = ap.parse_args(argv)
    if args.quick:
        args.size = "tiny"
    try:
        res = calibrate.run(args)
    except (ValueError, KeyError, FileNotFoundError) as e:
        print(f"calibrate: error: {e}", file=sys.stderr)
        return 2
    return 1 if res["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
