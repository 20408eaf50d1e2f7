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
# # 1. Roofline tour: chips side by side
#
# Where do common operations land on each chip of the catalog? This notebook loads the
# sourced catalog, evaluates a set of ops on every chip in **one** vectorised call, and
# shows Dojo's two memory levels: an op whose working set fits the D1's 440 MB of SRAM
# runs at SRAM bandwidth; a larger one is fed from the interface processors' HBM.
#
# Units: seconds, FLOP/s, byte/s. Peaks are dense (no sparsity).

# %%
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import perfmodel
from perfmodel import roofline as rl
from perfmodel.hardware import stack_chips

cat = perfmodel.load_catalog()
keys = ["a100_80gb", "h100_sxm", "h200", "b200", "gb200", "mi300x", "d1", "dojo_tile"]
chips = [cat.chip(k) for k in keys]
for k, c in zip(keys, chips):
    rec = cat.record(k)
    print(
        f"{rec.display_name:42s} bf16 {float(c.peak('bf16')) / 1e12:8.1f} TFLOP/s   "
        f"DRAM {float(c.mem_bytes_per_s[1]) / 1e12:5.2f} TB/s   "
        f"SRAM {float(c.mem_bytes[0]) / 1e6:8.0f} MB   ridge {float(rl.ridge_point(c)):6.0f} FLOP/byte"
    )

# %% [markdown]
# ## Common ops on every chip, one vectorised call
# A large GEMM, a skinny (decode-like) GEMM, flash attention, a LayerNorm and an
# elementwise add. `op_time_grid` is `jit(vmap(vmap(op_time)))` over (chips x ops).

# %%
ops = {
    "GEMM 8192^3": rl.matmul(8192, 8192, 8192, "bf16"),
    "GEMV-ish 16x8192x8192": rl.matmul(16, 8192, 8192, "bf16"),
    "attention b8 h32 s4096 d128": rl.attention(8, 32, 4096, 4096, 128, "bf16", causal=True),
    "layernorm 32k x 8192": rl.layernorm(32768, 8192, "bf16"),
    "add 1e9 fp32": rl.elementwise(1e9, "fp32"),
}
grid = rl.op_time_grid(
    rl.stack_ops(list(ops.values())), stack_chips(chips), rl.Efficiency.default()
)
times = np.asarray(grid.time_s)
bounds = np.asarray(grid.bound)
header = f"{'chip':12s}" + "".join(f"{name[:22]:>24s}" for name in ops)
print(header)
for i, k in enumerate(keys):
    cells = "".join(
        f"{times[i, j] * 1e3:14.3f} ms {rl.BOUNDS[bounds[i, j]]:>7s}" for j in range(len(ops))
    )
    print(f"{k:12s}{cells}")

# %% [markdown]
# ## Dojo: SRAM-resident vs HBM-fed
# Sweep a square GEMM's size on one D1: while the working set fits in 440 MB of SRAM the
# memory roof is the SRAM one; past it, the op is fed from HBM on the interface
# processors, and small-intensity ops slow down sharply.

# %%
d1 = cat.chip("d1")
sizes = np.geomspace(256, 32768, 40)
elem = [rl.op_time(rl.elementwise(float(s) ** 2, "bf16"), d1) for s in sizes]
ws = np.array([float(rl.elementwise(float(s) ** 2, "bf16").working_set_bytes) for s in sizes])
rate = np.array([float(t.attainable_flops_per_s) for t in elem])
level = np.array([int(t.bound) for t in elem])
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.loglog(ws / 1e6, rate / 1e9, "o-", ms=3)
ax.axvline(float(d1.mem_bytes[0]) / 1e6, color="grey", ls="--", label="D1 SRAM 440 MB")
ax.set_xlabel("working set (MB)")
ax.set_ylabel("attainable rate (GFLOP/s)")
ax.set_title("Elementwise add on one Tesla D1: SRAM vs HBM-fed")
ax.legend()
fig.text(0.01, 0.01, "Source: perfmodel catalog (Tesla AI Day 2021, Hot Chips 34)", fontsize=7)
fig.tight_layout()
print("bound per size:", [rl.BOUNDS[b] for b in level[::8]])
assert set(level) == {1, 2}, "the sweep should cross from SRAM-bound to DRAM-bound"

# %% [markdown]
# ## The classic roofline chart
# `perfmodel roofline --chip h100 --op matmul --m 4096 --n 4096 --k 4096 --plot h100.png`
# draws the same chart from the command line.

# %%
from perfmodel.plots import output_dir, roofline_chart

OUT = output_dir("01_roofline_tour")  # $PERFMODEL_OUT_DIR, never next to the notebook

op = ops["attention b8 h32 s4096 d128"]
t = rl.op_time(op, cat.chip("h100"), rl.Efficiency.ideal())
path = roofline_chart(
    OUT / "h100_roofline.png",
    cat.record("h100"),
    cat.chip("h100"),
    point={
        "intensity_flops_per_byte": float(t.intensity_flops_per_byte),
        "attainable_flops_per_s": float(t.attainable_flops_per_s),
        "label": "flash attention",
    },
)
print("wrote", path)
