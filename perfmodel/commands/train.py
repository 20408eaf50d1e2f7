"""``perfmodel train``: step time, throughput, MFU and memory of a training job on N chips,
with the best parallel layout (searched) or a given one."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any, cast

from perfmodel.choices import INFERENCE_MODES, TRAIN_PRECISIONS, workload_names
from perfmodel.commands._args import (
    add_catalog_args,
    check_finite,
    check_readable,
    number,
    user_catalog,
)
from perfmodel.commands._pick import add_pick_arg
from perfmodel.commands._plot import chart_path
from perfmodel.errors import InputError

if TYPE_CHECKING:
    from perfmodel import workloads as wl

# the training model (JAX, Flax) loads when the command runs, not for --help

_SIZE_FLAGS = (
    "layers",
    "hidden",
    "ffn",
    "heads",
    "kv_heads",
    "seq",
    "vocab",
    "experts",
    "top_k",
    "moe_ffn",
    "moe_layers",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="training step time / throughput / MFU of a workload on N chips",
        description="Model one optimizer step of a workload on N chips: the best parallel "
        "layout (one jit+vmap search over TP/PP/DP/CP/micro-batch/VPP/SP/"
        "recompute/ZeRO) or a given --layout, with its time breakdown and "
        "memory per device. Presets: " + ", ".join(workload_names()),
    )
    p.add_argument(
        "--workload",
        default=None,
        help="preset name (default gpt3-175b; also the base for size flags)",
    )
    p.add_argument(
        "--workload-file",
        default=None,
        help="TOML file with the workload fields (layers, hidden, heads, ...; "
        "optional base = 'preset')",
    )
    for f in _SIZE_FLAGS:
        p.add_argument(
            "--" + f.replace("_", "-"),
            type=int,
            default=None,
            help=f"custom workload: {f.replace('_', ' ')}",
        )
    p.add_argument("--gated-ffn", action="store_true", help="custom workload: SwiGLU FFN")
    p.add_argument("--chip", required=True, help="catalog chip key or alias (e.g. h100)")
    p.add_argument("--chips", type=int, required=True, help="number of chips N")
    p.add_argument(
        "--precision",
        default=None,
        choices=TRAIN_PRECISIONS,
        help="override the workload precision",
    )
    p.add_argument(
        "--global-batch", type=int, default=None, help="global batch in sequences (samples)"
    )
    add_pick_arg(p)
    add_catalog_args(p)
    p.add_argument(
        "--layout",
        default=None,
        help="evaluate this layout instead of searching, e.g. "
        "tp=8,pp=8,dp=16,mb=1,vpp=3,sp=1,recompute=selective,zero=1 "
        "(dp defaults to N/(tp*pp*cp))",
    )
    p.add_argument(
        "--inference",
        choices=INFERENCE_MODES,
        default=None,
        help="instead: forward-only throughput (forward = samples or prefill "
        "tokens; decode = generated tokens) at --precision (default int8)",
    )
    p.add_argument(
        "--plot",
        default=None,
        metavar="PATH",
        help="PNG file or existing directory: the step-time breakdown and memory per device",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


#: Largest degree (tp, pp, dp, cp, mb, vpp) a --layout may give.
MAX_LAYOUT = 2**20
#: Most chips a command accepts.
MAX_CHIPS = 2**24


def parse_layout(text: str, n_chips: int) -> dict:
    """``"tp=8,pp=8,mb=1,vpp=3,sp=1,recompute=full"`` -> a layout dict (dp inferred)."""
    from perfmodel import training as tr

    out: dict = {}
    keys = (*tr.LAYOUT_FIELDS, *tr.RECIPE_FLAGS)  # recipe flags: 0/1, not searched
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise InputError(f"--layout item {part!r} must be key=value (keys: {', '.join(keys)})")
        k, v = (s.strip().lower() for s in part.split("=", 1))
        k = {
            "v": "vpp",
            "vp": "vpp",
            "micro_batch": "mb",
            "mbs": "mb",
            "offload": "offload_layers",
            "cpu_offloading_num_layers": "offload_layers",
        }.get(k, k)
        if k not in keys:
            raise InputError(f"--layout key {k!r} is unknown; keys: {', '.join(keys)}")
        if k == "recompute":
            out[k] = v
        elif k == "sp" or k in tr.RECIPE_FLAGS:
            if v not in ("0", "1", "true", "false", "on", "off"):
                raise InputError(f"--layout {k}={v!r} must be 0/1 (or on/off)")
            out[k] = int(v in ("1", "true", "on"))
        else:
            # layer counts may be 0 (none, or the fewest that fit); degrees start at 1
            lo = 0 if k in ("recompute_layers", "offload_layers") else 1
            try:
                out[k] = int(v)
            except ValueError:
                raise InputError(f"--layout {k}", v, f"an integer >= {lo}") from None
            if out[k] < lo or out[k] > MAX_LAYOUT:
                raise InputError(f"--layout {k}", out[k], f"an integer in [{lo}, {MAX_LAYOUT}]")
    if "dp" not in out:
        denom = out.get("tp", 1) * out.get("pp", 1) * out.get("cp", 1)
        if n_chips % denom:
            raise InputError(f"--layout tp*pp*cp = {denom} does not divide --chips {n_chips}")
        out["dp"] = n_chips // denom
    return out


def _workload(args) -> wl.Workload:
    from perfmodel import workloads as wl

    sizes = {f: getattr(args, f) for f in _SIZE_FLAGS if getattr(args, f) is not None}
    if args.workload is not None and not args.workload.strip():
        raise InputError("--workload", args.workload, f"one of {', '.join(wl.WORKLOAD_NAMES)}")
    if args.workload_file is not None:
        check_readable(args.workload_file, "--workload-file")
        w = wl.load_workload_file(args.workload_file)
        if sizes or args.gated_ffn:
            spec = w.to_dict()
            spec.update(sizes)
            spec["gated_ffn"] = spec["gated_ffn"] or args.gated_ffn
            w = wl.workload_from_dict(
                {k: (int(v) if isinstance(v, float) else v) for k, v in spec.items()}
            )
        return w
    if sizes or args.gated_ffn:
        spec: dict = {"base": args.workload} if args.workload else {"name": "custom"}
        spec.update(sizes)
        if args.gated_ffn:
            spec["gated_ffn"] = True
        return wl.workload_from_dict(spec)
    return wl.get_workload(args.workload or "gpt3-175b")


def _inputs(args) -> str:
    """The flags that set the job, for an error message."""
    keys = ("workload", "workload_file", *_SIZE_FLAGS, "chip", "chips", "precision")
    keys += ("global_batch", "layout", "inference", "pick")
    return " ".join(
        f"--{k.replace('_', '-')} {getattr(args, k)}" for k in keys if getattr(args, k) is not None
    )


def _fmt_gb(x: float) -> str:
    return f"{x / 1e9:.1f}"


def run(args) -> int:
    from perfmodel import training as tr
    from perfmodel import workloads as wl
    from perfmodel.equivalence import check_trainable, chip_spec
    from perfmodel.training.fit import prediction_band

    number(args.chips, "--chips", 1, MAX_CHIPS, integer=True)
    if args.global_batch is not None:
        number(args.global_batch, "--global-batch", 1, 2**40, integer=True)
    w = _workload(args)
    # the chip as resolved in the catalog it was named in (built-in + --catalog files):
    # its pytree at --pick, and that catalog for its network
    cat = user_catalog(args.catalog, args.allow_override)
    spec = chip_spec(args.chip, cat)
    chip = spec.chip(args.pick)
    if not args.inference:
        check_trainable(spec, w.with_precision(args.precision).precision)
    plot = None
    if args.plot is not None:
        if args.inference:
            raise InputError("--plot", args.plot, "a training job (not with --inference)")
        plot = chart_path(args.plot, "train", w.name, args.chip, args.chips)
    if args.inference:
        prec = args.precision or "int8"
        # details=True returns (rate, details); the unannotated return type is inferred as
        # the union of both forms
        rate, info = cast(
            tuple[float, dict[str, Any]],
            tr.inference_throughput(
                w,
                args.chip,
                args.chips,
                precision=prec,
                mode=args.inference,
                details=True,
                chip=chip,
                catalog=cat,
            ),
        )
        unit = "tokens" if w.unit == "token" else "samples"
        check_finite({"units_per_s": rate, **info}, _inputs(args))
        if args.json:
            print(
                json.dumps(
                    dict(
                        workload=w.name,
                        chip=args.chip,
                        n_chips=args.chips,
                        units_per_s=rate,
                        **info,
                    ),
                    indent=2,
                )
            )
        else:
            print(
                f"{w.name} inference ({args.inference}, {prec}) on {args.chips} x {args.chip}: "
                f"{rate:,.1f} {unit}/s"
            )
            print(
                f"  {info['replicas']} replica(s) of tp={info['tp']}, batch {info['batch']}, "
                f"{info['time_per_pass_s'] * 1e3:.2f} ms per pass, memory "
                f"{_fmt_gb(info['memory_per_chip_bytes'])} of "
                f"{_fmt_gb(info['memory_capacity_bytes'])} GB usable per chip"
            )
        return 0
    if args.layout:
        layout = parse_layout(args.layout, args.chips)
        res = tr.evaluate_layout(
            w,
            args.chip,
            args.chips,
            layout,
            precision=args.precision,
            global_batch=args.global_batch,
            chip=chip,
            catalog=cat,
        )
    else:
        res = tr.best_layout(
            w,
            args.chip,
            args.chips,
            precision=args.precision,
            global_batch=args.global_batch,
            chip=chip,
            catalog=cat,
        )
    d = res.to_dict()
    d["pick"] = args.pick
    if not spec.builtin:  # a chip of a --catalog file (or one that replaces a built-in)
        d["chip_catalog"], d["chip_digest"] = spec.source, spec.digest
    d["cv_error_pct"] = prediction_band(res.chip, res.precision, "moe" if w.is_moe else "dense")
    check_finite(d, _inputs(args))
    if plot is not None:
        from perfmodel.plots import train_chart  # here: matplotlib only for a chart

        band = d["cv_error_pct"]
        note = "model estimate (perfmodel training model)" + (
            f"; cross-validated throughput error ±{band:.0f}%" if band is not None else ""
        )
        d["plot"] = str(train_chart(plot, d, note))
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    n = args.chips
    params = float(wl.param_count(w.with_precision(args.precision))) / 1e9
    unit = "tokens" if res.unit == "token" else "samples"
    rate = res.units_per_s
    print(
        f"{res.workload} ({params:.1f} B params, {res.precision}, global batch "
        f"{int(w.global_batch if args.global_batch is None else args.global_batch)}) on {n} x {res.chip}"
        + ("" if args.pick == "best" else f" (chip figures at their {args.pick} estimates)")
    )
    if args.layout:
        print("given layout")
    else:
        print(
            f"best of {res.layouts_evaluated:,} layouts ({res.layouts_fitting:,} fit) in "
            f"{res.search_time_s:.3f} s (+{res.compile_time_s:.2f} s compile)"
        )
    lay = res.layout
    print(
        "layout: "
        + " ".join(f"{k}={('on' if v else 'off') if k == 'sp' else v}" for k, v in lay.items())
    )
    band = prediction_band(res.chip, res.precision, "moe" if w.is_moe else "dense")
    band_txt = (
        f" (CV error ±{band:.0f}% for {res.chip}/{res.precision} {'moe' if w.is_moe else 'dense'})"
        if band is not None
        else " (no cross-validated error band for this chip)"
    )
    print(
        f"step time {res.step_time_s:.3f} s | {rate:,.0f} {unit}/s | {rate / n:,.1f} "
        f"{unit}/s per chip{band_txt} | MFU {100 * res.mfu:.1f}%"
    )
    m = res.memory
    print(
        f"memory per device: {_fmt_gb(res.memory_per_device_bytes)} GB of "
        f"{_fmt_gb(res.memory_capacity_bytes)} GB usable (weights {_fmt_gb(m['weights_bytes'])}, "
        f"grads {_fmt_gb(m['grads_bytes'])}, optimizer {_fmt_gb(m['optimizer_bytes'])}, "
        f"activations {_fmt_gb(m['activations_bytes'])})"
    )
    total = res.step_time_s
    print("breakdown of the step:")
    for k, v in res.breakdown.items():
        label = k[:-2].replace("_", " ")
        if k != "compute_s" and v == 0:
            continue
        print(f"  {label:12s} {v:10.4f} s  {100 * v / total:5.1f}%")
    if plot is not None:
        print(f"plot: {d['plot']}")
    return 0
