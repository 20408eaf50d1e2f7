"""``perfmodel calibrate``: measure this device with perfmodel.kernels, compare with the roofline,
fit the efficiency factors and write a calibration file (same code as
``benchmarks/calibrate.py``)."""

from __future__ import annotations

from perfmodel.choices import CALIBRATION_STATS, DEFAULT_HOST_CATALOG, DEFAULT_HOST_KEY

# the calibration pipeline (JAX, the kernels) loads when the command runs, not for --help


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="measure this device and calibrate the roofline efficiencies",
        description="Run the JAX microbenchmark kernels (checked against NumPy, then timed), "
        "save the measured host spec as a catalog entry (CPU), compare each kernel "
        "with the roofline prediction, fit the efficiency factors on a training "
        "split and print median / worst absolute % error before and after on the "
        "held-apart split.",
    )
    add_arguments(p)
    p.set_defaults(func=_run)


def add_arguments(ap) -> None:
    """The options shared by ``perfmodel calibrate`` and ``benchmarks/calibrate.py`` (the
    arguments of :func:`perfmodel.calibrate.run`)."""
    ap.add_argument(
        "--size",
        default="tiny",
        choices=("tiny", "small", "full"),
        help="kernel sweep size (tiny: about a minute on a 2-core CPU)",
    )
    ap.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "gpu"),
        help="device to measure (auto: JAX's default backend)",
    )
    ap.add_argument(
        "--chip",
        default=None,
        help="catalog chip to compare with (default: the measured host on CPU, "
        "the detected GPU's catalog entry on GPU)",
    )
    ap.add_argument("--catalog", default=None, help="extra catalog TOML for --chip")
    ap.add_argument(
        "--host-catalog",
        default=str(DEFAULT_HOST_CATALOG),
        help="where to write the measured host catalog entry (CPU)",
    )
    ap.add_argument("--host-key", default=DEFAULT_HOST_KEY, help="catalog key of the measured host")
    ap.add_argument(
        "--reuse-host",
        action="store_true",
        help="compare with the host entry already in --host-catalog instead of "
        "re-measuring it (CPU)",
    )
    ap.add_argument(
        "--out",
        default=None,
        help="calibration file to write (default ~/.cache/perfmodel/calibration_<chip>.toml)",
    )
    ap.add_argument("--json", dest="json_out", default=None, help="write all results as JSON here")
    ap.add_argument(
        "--families",
        default="matmul,attention,stream,reduction",
        help="comma-separated kernel families",
    )
    ap.add_argument(
        "--collectives",
        type=int,
        default=4,
        metavar="N",
        help="also run psum/all-gather/all-to-all on N devices (CPU: simulated in a "
        "subprocess); 0 to skip",
    )
    ap.add_argument("--pallas", action="store_true", help="add Pallas kernels (GPU/TPU only)")
    ap.add_argument(
        "--stat",
        default="fastest",
        choices=CALIBRATION_STATS,
        help="measured time of a kernel: its fastest timed call (default; robust "
        "to other jobs on a shared machine) or the median of the repeats",
    )
    ap.add_argument("--steps", type=int, default=3000, help="Adam steps of the fit")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every kernel")


def _run(args) -> int:
    from perfmodel import calibrate

    res = calibrate.run(args)
    return 1 if res["failed"] else 0
