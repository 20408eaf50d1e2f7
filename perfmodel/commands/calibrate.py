"""``perfmodel calibrate``: measure this device with perfmodel.kernels, compare with the roofline,
fit the efficiency factors and write a calibration file (same code as
``benchmarks/calibrate.py``)."""

from __future__ import annotations


def register(subparsers) -> None:
    # the calibration pipeline (JAX, the kernels) loads when the command runs, not for --help
    from perfmodel import calibrate

    p = subparsers.add_parser(
        "calibrate",
        help="measure this device and calibrate the roofline efficiencies",
        description="Run the JAX microbenchmark kernels (checked against NumPy, then timed), "
        "save the measured host spec as a catalog entry (CPU), compare each kernel "
        "with the roofline prediction, fit the efficiency factors on a training "
        "split and print median / worst absolute % error before and after on the "
        "held-apart split.",
    )
    calibrate.add_arguments(p)
    p.set_defaults(func=_run)


def _run(args) -> int:
    # the calibration pipeline (JAX, the kernels) loads when the command runs, not for --help
    from perfmodel import calibrate

    res = calibrate.run(args)
    return 1 if res["failed"] else 0
