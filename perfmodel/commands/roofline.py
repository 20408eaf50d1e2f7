"""``perfmodel roofline``.

* ``roofline --chip NAME|all --op matmul ...``: time, bound, arithmetic intensity,
  attainable FLOP/s and ridge point; ``--plot FILE.png`` draws the roofline chart;
  ``--chip all`` times the op on every chip in one vmapped call.

Accepts ``--catalog FILE`` (repeatable) to load user catalog files on top of the built-in
one. Registered by :func:`perfmodel.commands.catalog.register` (after ``systems``).
"""

from __future__ import annotations

import functools
import json
import math
import sys
from typing import TYPE_CHECKING, Any

from perfmodel.commands._args import check_finite, plot_file
from perfmodel.commands._catalog_common import _catalog, _common, _si, _table
from perfmodel.errors import InputError
from perfmodel.hardware import PRECISION_KEYS, PRECISIONS

if TYPE_CHECKING:
    from perfmodel import roofline as rl

# The roofline model (JAX, NumPy) loads when the command runs, not for --help.

OPS = ("matmul", "bmm", "attention", "elementwise", "layernorm", "conv2d")


@functools.cache
def _op_time():
    """:func:`perfmodel.roofline.op_time` as one compiled program (25 eager ones otherwise,
    each lowered and loaded from the compile cache; the same numbers, bit for bit)."""
    import jax

    from perfmodel import roofline as rl

    return jax.jit(rl.op_time)


#: Largest size a roofline flag accepts (the op's FLOPs and bytes must also stay finite).
MAX_SIZE = 1e15


def _pos(args, name: str, default):
    v = getattr(args, name.replace("-", "_"))
    v = default if v is None else v
    if not (isinstance(v, (int, float)) and math.isfinite(v) and 0 < v <= MAX_SIZE):
        raise InputError(f"--{name}", v, f"a positive number <= {MAX_SIZE:g}")
    return v


def precision_arg(args) -> str:
    """``--precision`` (``--dtype`` is its deprecated alias), checked."""
    prec, old = getattr(args, "precision", None), getattr(args, "dtype", None)
    if old is not None:
        if prec is not None and prec != old:
            raise InputError(f"--precision {prec!r} and --dtype {old!r} disagree; give one")
        prec = old
    prec = prec or "bf16"
    if prec not in PRECISIONS:
        flag = "--precision" if old is None else "--dtype"
        raise InputError(f"{flag} {prec!r} must be one of {', '.join(PRECISIONS)}")
    return prec


def build_op(args) -> tuple[rl.Op, str]:
    """The :class:`perfmodel.roofline.Op` described by the CLI flags, and a label."""
    from perfmodel import roofline as rl

    dt = precision_arg(args)
    op = args.op
    if op == "matmul":
        m, n, k = (_pos(args, x, 8192) for x in ("m", "n", "k"))
        return rl.matmul(m, n, k, dt), f"matmul m={m:g} n={n:g} k={k:g} {dt}"
    if op == "bmm":
        b = _pos(args, "batch", 8)
        m, n, k = (_pos(args, x, 4096) for x in ("m", "n", "k"))
        return rl.batched_matmul(b, m, n, k, dt), f"bmm batch={b:g} m={m:g} n={n:g} k={k:g} {dt}"
    if op == "attention":
        b, h = _pos(args, "batch", 1), _pos(args, "heads", 32)
        s, d = _pos(args, "seq", 4096), _pos(args, "head-dim", 128)
        return (
            rl.attention(b, h, s, s, d, dt, causal=args.causal),
            f"attention batch={b:g} heads={h:g} seq={s:g} head_dim={d:g} {dt}"
            + (" causal" if args.causal else ""),
        )
    if op == "elementwise":
        e = _pos(args, "elements", 2**28)
        return rl.elementwise(e, dt), f"elementwise add elements={e:g} {dt}"
    if op == "layernorm":
        r, c = _pos(args, "m", 8192), _pos(args, "n", 8192)
        return rl.layernorm(r, c, dt), f"layernorm rows={r:g} cols={c:g} {dt}"
    if op == "conv2d":
        b, hw = _pos(args, "batch", 32), _pos(args, "hw", 56)
        ci, co, ks = _pos(args, "c-in", 256), _pos(args, "c-out", 256), _pos(args, "kernel", 3)
        return (
            rl.conv2d(b, hw, hw, ci, co, ks, ks, 1, dt),
            f"conv2d batch={b:g} {hw:g}x{hw:g} c_in={ci:g} c_out={co:g} k={ks:g} {dt}",
        )
    raise InputError("--op", op, f"one of {', '.join(OPS)}")


def _timing_dict(t, i: int | None = None) -> dict[str, Any]:
    import numpy as np

    from perfmodel import roofline as rl

    g = (lambda x: float(np.asarray(x))) if i is None else (lambda x: float(np.asarray(x)[i]))
    return {
        "time_s": g(t.time_s),
        "compute_s": g(t.compute_s),
        "memory_s": g(t.memory_s),
        "overhead_s": g(t.overhead_s),
        "bound": rl.BOUNDS[int(g(t.bound))],
        "intensity_flops_per_byte": g(t.intensity_flops_per_byte),
        "attainable_flops_per_s": g(t.attainable_flops_per_s),
    }


def cmd_roofline(args) -> int:
    deprecated = args.dtype is not None
    rc = _roofline(args)
    if deprecated:  # after the result (an error stays one line)
        print("perfmodel roofline: note: --dtype is deprecated; use --precision", file=sys.stderr)
    return rc


def _roofline(args) -> int:
    import numpy as np

    from perfmodel import roofline as rl
    from perfmodel.hardware import stack_chips

    cat = _catalog(args)
    dtype = precision_arg(args)
    args.precision, args.dtype = dtype, None
    op, label = build_op(args)
    check_finite(
        {"flops": float(op.flops), "bytes": float(op.bytes), "ws": float(op.working_set_bytes)},
        label,
    )
    eff = rl.Efficiency.ideal() if args.ideal else rl.Efficiency.default()
    eff_note = (
        "ideal (100% of peaks, no overhead)"
        if args.ideal
        else "default efficiencies (matmul/conv 80%, attention 70% of peak; "
        "SRAM 90%, DRAM 85% of bandwidth; 3 us per op)"
    )
    p_idx = PRECISIONS.index(dtype)
    kind = int(op.kind)
    ceff = float(np.asarray(eff.compute)[kind])
    meff = np.asarray(eff.memory)
    summary = {
        "op": label,
        "flops": float(op.flops),
        "bytes": float(op.bytes),
        "working_set_bytes": float(op.working_set_bytes),
        "precision": dtype,
        "efficiency": eff_note,
        "pick": args.pick,
    }

    if args.chip.lower() == "all":
        if args.plot:
            raise InputError("--plot needs one chip, not --chip all")
        keys = [k for k, rec in cat.chips.items() if rec.supports(dtype)]
        skipped = [k for k in cat.chips if k not in keys]  # no rate at this precision
        if not keys:
            raise InputError(f"--precision {dtype!r} is supported by no catalog chip")
        summary["unsupported_chips"] = skipped
        chips = stack_chips([cat.chip(k, args.pick) for k in keys])
        t = rl.op_time_grid(rl.stack_ops([op]), chips, eff)
        rows = []
        for i, key in enumerate(keys):
            d = _timing_dict(jax_index(t, i))
            peak = float(np.asarray(chips.peak_flops_per_s)[i, p_idx])
            lvl = 1 if float(op.working_set_bytes) > float(np.asarray(chips.mem_bytes)[i, 0]) else 0
            bw = float(np.asarray(chips.mem_bytes_per_s)[i, lvl])
            d.update(
                chip=key,
                peak_flops_per_s=peak,
                memory_level=("sram", "dram")[lvl],
                ridge_flops_per_byte=peak * ceff / (bw * meff[lvl]),
                fraction_of_peak=d["attainable_flops_per_s"] / peak,
                fallback=cat.chips[key].fallbacks().get(dtype, ""),
            )
            rows.append(d)
        check_finite(rows, label)
        if args.json:
            json.dump({**summary, "chips": rows}, sys.stdout, indent=2)
            print()
            return 0
        print(
            f"{label}: {_si(summary['flops'], 'FLOP')}, {_si(summary['bytes'], 'B')} moved, "
            f"working set {_si(summary['working_set_bytes'], 'B')}, "
            f"intensity {rows[0]['intensity_flops_per_byte']:.4g} FLOP/byte"
        )
        print(f"efficiency: {eff_note}; pick: {args.pick}")
        if skipped:
            print(f"not shown (no {dtype} rate): {', '.join(skipped)}")
        print()
        table = [
            [
                r["chip"],
                _si(r["time_s"], "s"),
                r["bound"],
                r["memory_level"],
                f"{r['attainable_flops_per_s'] / 1e12:.4g}",
                f"{100 * r['fraction_of_peak']:.1f}%",
                f"{r['ridge_flops_per_byte']:.4g}",
                (f"{dtype} as {r['fallback']}" if r["fallback"] else ""),
            ]
            for r in rows
        ]
        print(
            _table(
                table,
                [
                    "chip",
                    "time",
                    "bound",
                    "fed from",
                    "attainable TFLOP/s",
                    "of peak",
                    "ridge FLOP/B (that level)",
                    "note",
                ],
            )
        )
        return 0

    rec = cat.record(args.chip)
    if not rec.supports(dtype):
        raise InputError(
            f"--precision {dtype!r} is not supported by chip '{rec.key}' "
            f"(supported: {', '.join(rec.supported_precisions())})"
        )
    chip = rec.to_chip(args.pick)
    t = _op_time()(op, chip, eff)
    d = _timing_dict(t)
    peak = float(np.asarray(chip.peak_flops_per_s)[p_idx])
    bws = np.asarray(chip.mem_bytes_per_s)
    ridge = {lvl: peak * ceff / (float(bws[i]) * meff[i]) for i, lvl in enumerate(("sram", "dram"))}
    level = (
        "sram" if float(op.working_set_bytes) <= float(np.asarray(chip.mem_bytes)[0]) else "dram"
    )
    peak_fig = rec.figure(PRECISION_KEYS[rec.fallbacks().get(dtype, dtype)]) or rec.figure(
        "dram_bytes"
    )
    assert peak_fig is not None  # every catalog chip has dram_bytes
    d.update(
        chip=rec.key,
        peak_flops_per_s=peak,
        memory_level=level,
        ridge_flops_per_byte=ridge,
        fraction_of_peak=d["attainable_flops_per_s"] / peak,
        fallback=rec.fallbacks().get(dtype, ""),
        peak_source=peak_fig.source,
    )
    check_finite(d, label)
    if args.plot:
        # matplotlib only for a chart
        from perfmodel.plots import roofline_chart

        plot = plot_file(args.plot, f"roofline_{rec.key}.png")
        roofline_chart(
            plot,
            rec,
            chip,
            {
                "intensity_flops_per_byte": d["intensity_flops_per_byte"],
                "attainable_flops_per_s": d["attainable_flops_per_s"],
                "label": label,
            },
            precision=dtype,
            compute_eff=ceff,
            memory_eff=tuple(meff),
        )
        d["plot"] = str(plot)
    if args.json:
        json.dump({**summary, **d}, sys.stdout, indent=2)
        print()
        return 0
    print(f"{label} on {rec.key} ({rec.display_name}), pick {args.pick}")
    print(f"  efficiency:   {eff_note}")
    print(
        f"  work:         {_si(summary['flops'], 'FLOP')}, {_si(summary['bytes'], 'B')} moved, "
        f"working set {_si(summary['working_set_bytes'], 'B')} -> fed from {level.upper()}"
    )
    print(f"  intensity:    {d['intensity_flops_per_byte']:.4g} FLOP/byte")
    fb = f" ({dtype} runs at the {d['fallback']} rate)" if d["fallback"] else ""
    print(f"  peak:         {_si(peak, 'FLOP/s')} {dtype} dense{fb}")
    print(
        f"  ridge point:  {ridge['dram']:.4g} FLOP/byte (DRAM), {ridge['sram']:.4g} FLOP/byte "
        "(SRAM), at the efficiencies above"
    )
    print(
        f"  time:         {_si(d['time_s'], 's')} = max(compute {_si(d['compute_s'], 's')}, "
        f"memory {_si(d['memory_s'], 's')}) + overhead {_si(d['overhead_s'], 's')}"
    )
    print(f"  bound:        {d['bound']}")
    print(
        f"  attainable:   {_si(d['attainable_flops_per_s'], 'FLOP/s')} "
        f"({100 * d['fraction_of_peak']:.1f}% of peak)"
    )
    src = d["peak_source"]
    print(f"  peak source:  {src if len(src) <= 160 else src[:157] + '...'}")
    if args.plot:
        print(f"  plot:         {d['plot']}")
    return 0


def jax_index(tree, i: int):
    """Row ``i`` of every leaf (chip axis of an :func:`op_time_grid` result), op 0."""
    import jax
    import numpy as np

    return jax.tree_util.tree_map(lambda x: np.asarray(x)[i, 0], tree)


def register(sub) -> None:
    p = sub.add_parser("roofline", help="roofline time/bound of one op on a chip (or all chips)")
    p.add_argument("--chip", required=True, help="chip key or alias, or 'all'")
    p.add_argument("--op", choices=OPS, default="matmul")
    p.add_argument(
        "--precision", default=None, help=f"precision: {', '.join(PRECISIONS)} (default bf16)"
    )
    p.add_argument("--dtype", default=None, help="deprecated alias of --precision")
    for name, typ, h in (
        ("m", float, "rows (matmul, bmm, layernorm); default 8192 (bmm 4096)"),
        ("n", float, "cols (matmul, bmm, layernorm)"),
        ("k", float, "inner dimension (matmul, bmm)"),
        ("batch", float, "batch (bmm 8, attention 1, conv2d 32)"),
        ("seq", float, "sequence length (attention, default 4096)"),
        ("heads", float, "attention heads (default 32)"),
        ("head-dim", float, "attention head dim (default 128)"),
        ("elements", float, "elements (elementwise, default 2**28)"),
        ("hw", float, "conv2d spatial size (default 56)"),
        ("c-in", float, "conv2d input channels (default 256)"),
        ("c-out", float, "conv2d output channels (default 256)"),
        ("kernel", float, "conv2d kernel size (default 3)"),
    ):
        p.add_argument(f"--{name}", type=typ, default=None, help=h)
    p.add_argument("--causal", action="store_true", help="causal attention (half the FLOPs)")
    p.add_argument("--ideal", action="store_true", help="100%% efficiency, no overhead")
    p.add_argument("--plot", metavar="FILE.png", help="draw the roofline chart to FILE")
    _common(p)
    p.set_defaults(func=cmd_roofline)
