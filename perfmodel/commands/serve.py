"""``perfmodel serve``: LLM serving throughput on N chips in an MLPerf scenario (Offline,
Server, Interactive), the p99 latencies it meets, the best layout, and the
cross-validated error band of the fitted serving model; ``--plot`` draws the
throughput-latency curve."""

from __future__ import annotations

import argparse
import json
from typing import Any

from perfmodel.choices import SERVING_SCENARIOS, workload_names
from perfmodel.commands._args import plot_file

# the serving model (JAX) loads when the command runs, not for --help


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="LLM serving tokens/s at MLPerf latency limits (Offline/Server/Interactive)",
        description="Estimate the output tokens/s of a workload served on N chips in an "
        "MLPerf scenario: offline (max throughput), server or interactive (the best "
        "throughput meeting the p99 TTFT and TPOT limits under Poisson arrivals, with "
        "the benchmark's request lengths). The best tensor/pipeline/expert-parallel "
        "layout is searched. Scenarios: "
        + ", ".join(SERVING_SCENARIOS)
        + ". Presets: "
        + ", ".join(workload_names())
        + ".",
    )
    p.add_argument("--workload", default="llama2-70b", help="preset name (default llama2-70b)")
    p.add_argument("--chip", required=True, help="catalog chip key or alias (e.g. h200)")
    p.add_argument("--chips", type=int, required=True, help="number of chips N")
    p.add_argument("--scenario", default="server", help="offline | server | interactive")
    p.add_argument("--precision", default=None, help="GEMM precision (default fp8 where supported)")
    p.add_argument(
        "--kv-precision", default=None, help="KV cache precision (default fp8 where supported)"
    )
    p.add_argument(
        "--engine",
        default=None,
        help="serving engine family: tensorrt-llm | vllm (default: the one the chip "
        "vendor's MLPerf results ran; its newest fitted software)",
    )
    p.add_argument("--ttft-ms", type=float, default=None, help="p99 TTFT limit (ms)")
    p.add_argument("--tpot-ms", type=float, default=None, help="p99 TPOT limit (ms)")
    p.add_argument("--input-tokens", type=float, default=None, help="mean prompt length")
    p.add_argument("--output-tokens", type=float, default=None, help="mean output length")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--plot", default=None, help="PNG file or directory: throughput-latency curve")
    p.set_defaults(func=run)


def _band(res: dict[str, Any]) -> str:
    e = res["error_band"]["cv_mean_abs_error"]
    if e is None:
        return "no fitted error band"
    return f"+/-{e * 100:.0f}% (CV mean |error|, {res['error_band']['cv_kind']} split)"


def _plot(path, res: dict[str, Any]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = res["curve"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(
        [p["tpot_p99_ms"] for p in c],
        [p["tokens_per_s"] for p in c],
        "-o",
        ms=3,
        label=f"tp={res['layout']['tp']} pp={res['layout']['pp']} x{res['layout']['replicas']}",
    )
    lat = res["latencies_ms"]
    ax.plot([lat["tpot_p99"]], [res["tokens_per_s"]], "r*", ms=12, label="operating point")
    lim = res["limits_ms"].get("tpot")
    if lim is not None:
        ax.axvline(lim, color="gray", ls="--", label=f"p99 TPOT limit {lim:g} ms")
    ax.set_xscale("log")
    ax.set_xlabel("p99 time per output token (ms)")
    ax.set_ylabel("output tokens/s (system)")
    ax.set_title(f"{res['workload']} on {res['n_chips']} x {res['chip']} ({res['scenario']})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.text(
        0.01,
        0.01,
        f"estimate, {_band(res)}; {res['error_band']['source']}",
        fontsize=6,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


#: The options of :func:`perfmodel.serving.serve` given by the argument of the same name.
_SERVE_OPTIONS = "precision kv_precision ttft_ms tpot_ms input_tokens output_tokens engine".split()


def run(args) -> int:
    from perfmodel.serving import serve

    opts = {k: getattr(args, k) for k in _SERVE_OPTIONS}
    res = serve(args.workload, args.chip, args.chips, args.scenario, curve=bool(args.plot), **opts)
    if args.plot:
        path = plot_file(args.plot, f"serve_{res['workload']}_{res['chip']}_{res['scenario']}.png")
        res["plot"] = str(_plot(path, res))
    if args.json:
        print(json.dumps(res, indent=2, allow_nan=False))
        return 0
    lay, lat, lim = res["layout"], res["latencies_ms"], res["limits_ms"]
    print(
        f"{res['workload']} on {res['n_chips']} x {res['chip']}, {res['scenario']} scenario "
        f"(estimate of the fitted serving model)"
    )
    print(
        f"  {res['tokens_per_s']:,.0f} output tokens/s ({res['tokens_per_s_per_chip']:,.0f} "
        f"per chip), error band {_band(res)}"
    )
    print(
        f"  layout: {lay['replicas']} replica(s) of tp={lay['tp']} pp={lay['pp']}"
        f"{' ep' if lay['ep'] else ''}, {res['batch_per_replica']:,.0f} requests in flight "
        f"(memory allows {res['max_batch_per_replica']:,.0f}); {res['precision']} weights, "
        f"{res['kv_precision']} KV cache"
    )
    sw = res["software"]
    print(
        f"  software: {sw['engine']} as of MLPerf {sw['as_of_round']} "
        f"(fitted factor {sw['factor']:.2f} vs TensorRT-LLM)"
    )

    def _lim(k):
        return "no limit" if lim.get(k) is None else f"limit {lim[k]:g} ms"

    query = (
        ""
        if lim.get("latency") is None
        else f", p99 query {lat['latency_p99']:,.0f} ms ({_lim('latency')})"
    )
    print(
        f"  p99 TTFT {lat['ttft_p99']:,.1f} ms ({_lim('ttft')}), p99 TPOT "
        f"{lat['tpot_p99']:,.1f} ms ({_lim('tpot')}){query}; limits met"
    )
    print(
        f"  memory per chip {res['memory_per_chip_bytes'] / 1e9:.1f} of "
        f"{res['memory_usable_per_chip_bytes'] / 1e9:.1f} GB usable"
    )
    ln = res["lengths"]
    print(
        f"  lengths ({ln['dataset']} dataset, {ln['source']}): input {ln['input_mean']:.0f} "
        f"mean / {ln['input_p99']:.0f} p99, output {ln['output_mean']:.0f} mean"
        + (f", {ln['beams']:.0f} beams" if ln["beams"] > 1 else "")
    )
    if args.plot:
        print(f"  plot: {res['plot']}")
    return 0
