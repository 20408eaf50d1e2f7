# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 4. Uncertainty: a small sweep over the fleet scenario and its fan chart
#
# Many inputs of a fleet plan are ranges, not facts: unit prices, the chip figures behind
# each H100e value curve (catalog low/best/high), delivery delays (the 12k-H100
# diversion, Blackwell's slip), the Cortex power ramp and the yearly budgets. A sweep
# draws every uncertain input per sample, modifies the fleet `Problem` pytree inside
# `jit`, and solves each sample's LP relaxation with the JAX PDHG solver, `vmap`ped over
# the batch; results stream to Parquet (resumable).
#
# Spec: perfmodel/data/sweeps/tesla-2024.toml (each range is sourced or marked ESTIMATE
# there). CLI: `perfmodel sweep tesla-2024 --out runs/tesla --samples 256 --plot fan.png`.
#
# This notebook runs a **small** sweep (16 samples, a looser solver tolerance of 1e-4)
# so it finishes in about a minute; the quantiles of 16 samples are rough.
# Units: H100e, H100e-quarters, USD.

# %%
import os
import shutil
import time
import tomllib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from perfmodel.plots import output_dir
from perfmodel.sweep import (
    load_results,
    parse_spec,
    plot_summary,
    run_sweep,
    sample_params,
    summarize,
)
from perfmodel.sweep.engine import builtin_spec_paths

SMALL = os.environ.get("PERFMODEL_NOTEBOOK_SMALL") == "1"
OUT_DIR = output_dir("04_uncertainty")  # $PERFMODEL_OUT_DIR, never next to the notebook
t_start = time.perf_counter()
raw = tomllib.loads(builtin_spec_paths()["tesla-2024"].read_text())
raw["sweep"].update(samples=16 if SMALL else 64, chunk_size=16)
raw["model"].update(tol=1e-4, iters=10000)  # small run: looser PDHG tolerance than the default 1e-6
spec = parse_spec(raw, "tesla-2024 (notebook)")
print(spec.description)
print(f"{len(spec.params)} uncertain inputs:")
for p in spec.params:
    print(f"  {p.name:22s} {p.dist:10s} {p.to_json()}")

# %%
OUT = OUT_DIR / "sweep_tesla_small"
shutil.rmtree(OUT, ignore_errors=True)
run = run_sweep(spec, OUT)
print(
    f"{run.samples} samples in {run.chunks_computed} chunk(s), {run.wall_s:.1f} s "
    f"(compile {run.compile_s:.1f} s) on {run.devices} device(s)"
)
table = load_results(OUT)
cols = {c: table.column(c).to_numpy() for c in table.column_names}
status = cols["solver.status"]
print(
    f"PDHG converged in {np.mean(status == 0):.0%} of samples "
    f"(median {np.median(cols['solver.iterations']):.0f} iterations)"
)
assert np.mean(status == 0) >= 0.75

# %% [markdown]
# ## P10 / P50 / P90
# `summarize` gives the quantiles of every output and how often each purchase decision
# is taken (a decision is "chosen" when the optimum buys more than half a unit).

# %%
s = summarize(OUT)
print(f"{'metric':16s} {'P10':>14s} {'P50':>14s} {'P90':>14s}")
for m, q in s["metrics"].items():
    print(f"{m:16s} {q['p10']:14,.0f} {q['p50']:14,.0f} {q['p90']:14,.0f}")
    assert q["p10"] <= q["p50"] <= q["p90"]
print("\ndecisions taken (share of samples, mean units bought):")
for d, v in sorted(s["decisions"].items(), key=lambda kv: -kv[1]["mean"]):
    if v["share"] > 0:
        print(f"  {d:20s} {v['share']:6.0%} {v['mean']:12,.0f}")

# %% [markdown]
# ## Fan chart and histogram
# H100e online per quarter: the P10-P90 band and the median, and the distribution of
# H100e at the end of the horizon.

# %%
fan_prefix, periods = (
    "h100e_q.",
    [c.split(".", 1)[1] for c in table.column_names if c.startswith("h100e_q.")],
)
series = np.stack([cols[fan_prefix + p] for p in periods], axis=1)
q10, q50, q90 = np.quantile(series, [0.1, 0.5, 0.9], axis=0)
assert np.all(q10 <= q50) and np.all(q50 <= q90)
fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
x = np.arange(len(periods))
a1.fill_between(x, q10 / 1e3, q90 / 1e3, alpha=0.3, label="P10-P90")
a1.plot(x, q50 / 1e3, "o-", label="P50")
for row in series[:8]:
    a1.plot(x, row / 1e3, color="grey", lw=0.5, alpha=0.6)
a1.set_xticks(x, periods, rotation=45)
a1.set_ylabel("H100e online (thousands)")
a1.set_title(f"tesla-2024: H100e per quarter, {len(series)} samples")
a1.legend()
last = cols["h100e"]
a2.hist(last / 1e3, bins=8)
for qv, ls in zip(np.quantile(last, [0.1, 0.5, 0.9]), (":", "-", ":")):
    a2.axvline(qv / 1e3, color="k", ls=ls)
a2.set_xlabel(f"H100e at {periods[-1]} (thousands)")
a2.set_ylabel("samples")
a2.set_title("end-of-horizon H100e (P10 / P50 / P90 lines)")
fig.text(
    0.01,
    0.01,
    "Source: perfmodel sweep (fleet planner LP relaxation per sample); ranges from "
    "perfmodel/data/sweeps/tesla-2024.toml, scenario tesla-2024 and the catalog (estimates marked there)",
    fontsize=6,
)
fig.tight_layout(rect=(0, 0.04, 1, 1))
fig.savefig(OUT_DIR / "sweep_fan.png", dpi=110)
print("wrote", OUT_DIR / "sweep_fan.png", "and", plot_summary(OUT, OUT_DIR / "sweep_summary.png"))

# %% [markdown]
# ## What drives the spread
# Rank correlation (Spearman) of each sampled input with end-of-horizon H100e: a crude
# but honest tornado with 16 samples.


# %%
def ranks(v):
    return np.argsort(np.argsort(v)).astype(float)


rho = {}
for name in [c for c in cols if c.startswith("param.")]:
    v = cols[name]
    if np.ptp(v) > 0:
        rho[name[len("param.") :]] = float(np.corrcoef(ranks(v), ranks(last))[0, 1])
for name, r in sorted(rho.items(), key=lambda kv: -abs(kv[1]))[:8]:
    print(f"  {name:22s} {r:+.2f} {'#' * int(round(abs(r) * 20))}")

# %% [markdown]
# ## Reproducible and resumable
# Sample `i` depends only on `(seed, i)`: drawing the inputs again for a few indices gives
# the values stored in the Parquet files (to the last bit or so: the sweep draws them
# inside one jitted chunk, this cell eagerly), whatever the chunking. Running the same
# sweep again finds every chunk on disk and computes nothing.

# %%
idx = np.array([0, 3, 7])
again = sample_params(spec.params, spec.seed, idx)
rows = {int(i): j for j, i in enumerate(cols["sample"])}
for name, vals in again.items():
    stored = cols[f"param.{name}"][[rows[int(i)] for i in idx]]
    np.testing.assert_allclose(
        np.asarray(vals), stored, rtol=1e-12
    )  # eager vs jitted: last-bit rounding
rerun = run_sweep(spec, OUT)
assert rerun.chunks_computed == 0 and rerun.complete
print(
    f"draws reproduced for samples {idx.tolist()}; re-run skipped {rerun.chunks_skipped} chunk(s)"
)
print(f"notebook ran in {time.perf_counter() - t_start:.0f} s")
