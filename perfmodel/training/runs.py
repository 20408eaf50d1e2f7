"""The published training runs the step model is fitted to, as model inputs.

The rows are NVIDIA's NeMo / Megatron-Bridge performance-summary tables, shipped as
``perfmodel/data/published_training_runs.toml`` (every row with its source URL and
commit; the header states the conventions). :func:`load_runs` turns each row into a
:class:`Run`: the workload preset (named as the row's ``model``) at the row's sequence
length, global batch and precision, the chip, the layout, and the measured tokens/s per
GPU. Rows the model cannot express are kept with the reason (:attr:`Run.excluded`),
never silently dropped.

Conventions applied (the page prints no more than this):

* ``-1`` cells: ``vp`` -> 1 (no interleaving), ``cp`` -> 1, ``fsdp`` -> 0, ``ep`` -> 1
  on a dense model; an MoE row without its ``ep`` is excluded (its layout is unknown).
* ``dp = gpus / (tp pp cp)``; sequence parallel on whenever ``tp > 1`` (Megatron-Bridge
  enables it with TP in every published recipe); distributed optimizer (ZeRO-1), or
  FSDP (ZeRO-3) where ``fsdp > 0``. Rows of NeMo AutoModel (the ``framework`` field)
  keep bf16 gradients and optimizer moments (:func:`bf16_states_of`).
* Memory settings the tables do not print come from the recipes that produced them
  (``perfmodel/data/training_recipes.toml``, with sources): activation offloading
  (``offload_layers``) where a recipe matches the row (:func:`recipe_settings`).
* Recomputation is not printed: the least of none / selective / full that fits the
  memory model is taken (``Run.recompute``), and the count of each is reported.
* Precisions: BF16 -> bf16; FP8, FP8-CS, MXFP8 and the block-scaled FP8 recipes ->
  fp8 (the recipe is kept in :attr:`Run.recipe`); NVFP4 -> fp4; "unstated" rows are
  excluded.
* Identical rows printed on two pages (``dup_group`` or the same cells) count once.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from perfmodel import workloads as wl
from perfmodel.hardware import load_catalog
from perfmodel.training.memory import memory_per_device
from perfmodel.training.published import PUBLISHED_RUNS, published_flops_per_token
from perfmodel.training.types import make_layout, prior_efficiency

RUNS_FILE = Path(__file__).resolve().parent.parent / "data" / "published_training_runs.toml"
RECIPES_FILE = Path(__file__).resolve().parent.parent / "data" / "training_recipes.toml"

#: The table's ``gpu`` values -> catalog chip keys.
CHIP_KEYS = {"h100": "h100_sxm", "b200": "b200", "gb200": "gb200"}


def precision_of(printed: str) -> tuple[str | None, str]:
    """(model precision or None if unusable, recipe label) of a row's ``precision``."""
    p = printed.strip()
    if p == "BF16":
        return "bf16", "bf16"
    if p == "NVFP4":
        return "fp4", "nvfp4"
    if p == "MXFP8":
        return "fp8", "mxfp8"
    if p == "FP8-CS":
        return "fp8", "fp8-current"
    if p.startswith("FP8 (") and "granularity" in p:
        return "fp8", "fp8-block"
    if p.startswith("FP8"):
        return "fp8", "fp8"
    return None, p


@dataclasses.dataclass(frozen=True)
class Run:
    """One published row as model inputs (``excluded`` says why a row is not used)."""

    index: int
    model: str
    family: str
    kind: str
    chip: str
    gpus: int
    precision: str
    recipe: str
    layout: dict[str, Any]
    tokens_per_s_per_gpu: float
    source: str
    excluded: str = ""
    recompute: str = "none"
    fits: bool = True
    release: str = ""

    @property
    def config(self) -> tuple:
        """The job apart from the software: model, chip, GPU count, recipe, sequence."""
        return (self.model, self.chip, self.gpus, self.recipe, self.layout["seq"])

    @property
    def scale(self) -> str:
        return "<=64" if self.gpus <= 64 else ("<=256" if self.gpus <= 256 else ">256")


def _cell(row: dict, key: str, default: int) -> int:
    v = row.get(key, -1)
    return default if v is None or v == -1 else int(v)


def workload_for(run: Run) -> wl.Workload:
    """The run's workload: its preset at the row's sequence, global batch, precision."""
    w = wl.get_workload(run.model)
    return dataclasses.replace(
        w,
        seq=jnp.asarray(float(run.layout["seq"])),
        global_batch=jnp.asarray(float(run.layout["global_batch"])),
    ).with_precision(run.precision)


def bf16_states_of(framework: str) -> bool:
    """Whether a row's framework keeps bf16 parameters, gradients and optimizer moments
    (:attr:`perfmodel.training.Layout.bf16_states`): NeMo AutoModel (PyTorch FSDP2 on a
    bf16 model, its default) does; Megatron-Core / Megatron-Bridge / NeMo recipes keep
    fp32 main gradients and an fp32 master copy."""
    return "automodel" in framework.lower()


def bf16_grads_of(framework: str, precision: str) -> bool:
    """Whether a row's recipe keeps and reduces its main gradients in bf16
    (:attr:`perfmodel.training.Layout.bf16_grads`, Megatron-Core
    ``grad_reduce_in_fp32 = False``). Megatron-Bridge's performance recipes set it for
    every LLM from their first release (the YAML configs of v0.1.0rc3, the Python
    configs of v0.2.0-v0.5.0 under ``scripts/performance/configs``, and the benchmark
    defaults of ``perf_recipes/_common.py`` since); NeMo 2.0's performance scripts set
    it for FP8 (``scripts/performance/helpers.py`` ``set_primary_perf_configs``), while
    their BF16 plugin keeps fp32 reduction. The rows of other frameworks (NeMo 1.0-era
    launcher tables, AutoModel, the Wan and DFM examples) keep the fp32 default."""
    f = framework.lower()
    if f.startswith("megatron-bridge (nemo container)"):
        return True
    return f.startswith("nemo framework (nemo 2.0)") and precision in ("fp8", "fp4")


def _dedupe_key(r: dict) -> tuple:
    cells = ("model", "gpu", "precision", "gpus", "global_batch", "micro_batch", "seq")
    cells += ("tp", "pp", "cp", "ep", "vp", "fsdp", "tokens_per_s_per_gpu")
    return tuple(r.get(k) for k in cells)


@functools.lru_cache(maxsize=1)
def _recipes() -> tuple[dict[str, Any], ...]:
    with RECIPES_FILE.open("rb") as fh:
        data = tomllib.load(fh)
    return tuple(check_recipe(r, data.get("sources", {})) for r in data.get("recipe", ()))


def check_recipe(rec: dict[str, Any], sources: dict[str, str]) -> dict[str, Any]:
    """A [[recipe]] of ``training_recipes.toml`` as given, or ValueError naming the key:
    model and gpu present, only known match and setting keys, a source from [sources]
    and confidence ``derived``."""
    allowed = {*RECIPE_MATCH, *RECIPE_SETTINGS, "source", "confidence", "note"}
    where = f"training_recipes.toml [[recipe]] {rec.get('model', '?')}/{rec.get('gpu', '?')}"
    for k in rec:
        if k not in allowed:
            raise ValueError(f"{where}: key {k!r} is unknown; allowed: {sorted(allowed)}")
    for k in ("model", "gpu", "source"):
        if not rec.get(k):
            raise ValueError(f"{where}: key {k!r} is missing")
    if not any(k in rec for k in RECIPE_SETTINGS):
        raise ValueError(f"{where}: sets none of {RECIPE_SETTINGS}")
    for key in str(rec["source"]).split(";"):
        if key.strip() not in sources:
            raise ValueError(f"{where}: source {key.strip()!r} is not in [sources]")
    if rec.get("confidence") != "derived":
        raise ValueError(f"{where}: confidence {rec.get('confidence')!r} must be 'derived'")
    return rec


#: Match keys of a [[recipe]] (each optional but model and gpu) and the layout settings
#: it may give.
RECIPE_MATCH = ("model", "gpu", "precision", "recipe", "fsdp", "micro_batch", "release_from")
RECIPE_SETTINGS = ("offload_layers", "full_graph")


def recipe_settings(
    model: str,
    gpu: str,
    precision: str,
    fsdp: bool,
    micro_batch: int,
    recipe: str = "",
    release: str = "",
) -> dict:
    """The layout settings (``offload_layers``, ``full_graph``) of every recipe in
    ``training_recipes.toml`` that matches a row (all of its match keys;
    ``release_from``: this release or a later one), or ``{}`` when none does."""
    row = dict(
        model=model, gpu=gpu, precision=precision, recipe=recipe, fsdp=fsdp, micro_batch=micro_batch
    )
    out: dict = {}
    for rec in _recipes():
        ok = all(
            (bool(row[k]) == bool(rec[k]) if k == "fsdp" else row[k] == rec[k])
            for k in RECIPE_MATCH
            if k in rec and k != "release_from"
        )
        if "release_from" in rec:
            ok = ok and _release_key(release) >= _release_key(rec["release_from"])
        if ok:
            out.update({k: int(rec[k]) for k in RECIPE_SETTINGS if k in rec})
    return out


@functools.lru_cache(maxsize=2)
def load_runs(path: str | None = None) -> tuple[Run, ...]:
    """Every row of the published-runs file as a :class:`Run` (excluded ones included)."""
    p = Path(path) if path else RUNS_FILE
    with p.open("rb") as fh:
        rows = tomllib.load(fh)["run"]
    cat = load_catalog()
    seen: set[tuple] = set()
    out: list[Run] = []
    for i, r in enumerate(rows):
        prec, recipe = precision_of(r["precision"])
        chip = CHIP_KEYS.get(r["gpu"], r["gpu"])
        tp, pp, cp = _cell(r, "tp", 1), _cell(r, "pp", 1), _cell(r, "cp", 1)
        ep, vp, fsdp = _cell(r, "ep", 1), _cell(r, "vp", 1), _cell(r, "fsdp", 0)
        gpus = int(r["gpus"])
        lay = dict(
            tp=tp,
            pp=pp,
            cp=cp,
            ep=ep,
            vpp=vp,
            mb=_cell(r, "micro_batch", 1),
            global_batch=int(r["global_batch"]),
            seq=int(r["seq"]),
            sp=tp > 1,
            zero=3 if fsdp > 0 else 1,
            bf16_states=int(bf16_states_of(r.get("framework", ""))),
            bf16_grads=int(bf16_grads_of(r.get("framework", ""), prec or "")),
        )
        lay.update(
            recipe_settings(
                r["model"],
                r["gpu"],
                prec or "",
                fsdp > 0,
                lay["mb"],
                recipe=recipe,
                release=str(r.get("release", "")),
            )
        )
        base: dict[str, Any] = dict(
            index=i,
            model=r["model"],
            chip=chip,
            gpus=gpus,
            precision=prec or "",
            recipe=recipe,
            layout=lay,
            tokens_per_s_per_gpu=float(r["tokens_per_s_per_gpu"]),
            source=r.get("source_url", ""),
            release=str(r.get("release", "")),
        )
        why = ""
        family = kind = "?"
        try:
            w0 = wl.get_workload(r["model"])
            family, kind = w0.family, ("moe" if w0.is_moe else "dense")
        except KeyError:
            why = f"no preset for model {r['model']!r}"
        key = _dedupe_key(r)
        if key in seen:
            why = why or "duplicate of an earlier row"
        seen.add(key)
        if prec is None:
            why = why or f"precision {r['precision']!r} not stated"
        if "performance regression" in r.get("note", "").lower():
            why = (
                why
                or "the page's footnote reports a known performance regression (a bug, not the hardware)"
            )
        if kind == "moe" and r.get("ep", -1) in (-1, None):
            why = why or "expert parallelism not printed for an MoE model: the layout is unknown"
        if gpus % (tp * pp * cp):
            why = why or f"gpus {gpus} not divisible by tp*pp*cp = {tp * pp * cp}"
        if r["tokens_per_s_per_gpu"] in (-1, None):
            why = why or "no tokens/s printed"
        if why:
            out.append(Run(family=family, kind=kind, excluded=why, **base))
            continue
        dp = gpus // (tp * pp * cp)
        lay["dp"] = dp
        if lay["global_batch"] % (dp * lay["mb"]):
            out.append(
                Run(
                    family=family,
                    kind=kind,
                    excluded=f"global batch {lay['global_batch']} not divisible by dp*mb = {dp}*{lay['mb']}",
                    **base,
                )
            )
            continue
        if (tp * dp * cp) % ep:
            out.append(
                Run(
                    family=family,
                    kind=kind,
                    excluded=f"ep {ep} divides neither dp*cp {dp * cp} nor tp*dp*cp {tp * dp * cp}",
                    **base,
                )
            )
            continue
        run = Run(family=family, kind=kind, **base)
        try:
            rc, fits = _least_recompute(run, cat)
        except (ValueError, KeyError) as e:
            out.append(dataclasses.replace(run, excluded=f"model cannot express it: {e}"))
            continue
        out.append(dataclasses.replace(run, recompute=rc, fits=fits))
    return tuple(out)


def layout_of(run: Run, recompute: str | None = None):
    """The run's :class:`perfmodel.training.Layout`."""
    L = run.layout
    return make_layout(
        tp=L["tp"],
        pp=L["pp"],
        dp=L["dp"],
        cp=L["cp"],
        mb=L["mb"],
        vpp=L["vpp"],
        sp=L["sp"],
        recompute=recompute or run.recompute,
        zero=L["zero"],
        ep=L["ep"],
        bf16_states=L.get("bf16_states", 0),
        offload_layers=L.get("offload_layers", 0),
        full_graph=L.get("full_graph", 0),
        bf16_grads=L.get("bf16_grads", 0),
    )


def _fits(run: Run, cat, recompute: str | None = None) -> bool:
    """Whether the run's layout fits the memory model (the usable share of DRAM that
    :func:`perfmodel.training.step_time` uses)."""
    cap = float(cat.chip(run.chip).mem_bytes[1]) * float(prior_efficiency().mem_usable)
    total = float(memory_per_device(workload_for(run), layout_of(run, recompute), cap)[4])
    return total <= cap


def _least_recompute(run: Run, cat) -> tuple[str, bool]:
    # block recomputes the fewest whole layers that fit (all of them = full)
    for rc in ("none", "selective", "block"):
        if _fits(run, cat, rc):
            return rc, True
    return "block", False


@functools.lru_cache(maxsize=1)
def other_runs() -> tuple[Run, ...]:
    """The runs of :data:`perfmodel.training.PUBLISHED_RUNS` (MLPerf, the Llama 3 paper,
    Megatron-LM at up to 16,384 GPUs, A100 included), converted from TFLOP/s in each
    publication's FLOP convention to tokens/s per GPU, with their stated layouts."""
    cat = load_catalog()
    out = []
    for j, c in enumerate(PUBLISHED_RUNS):
        w = wl.get_workload(c["workload"])
        conv = float(published_flops_per_token(w, c["convention"]))
        L = dict(c["layout"])
        lay = dict(
            tp=L["tp"],
            pp=L["pp"],
            cp=L.get("cp", 1),
            ep=1,
            vpp=L.get("vpp", 1),
            mb=L["mb"],
            dp=L["dp"],
            global_batch=int(float(w.global_batch)),
            seq=int(float(w.seq)),
            sp=bool(L.get("sp", 0)),
            zero=L.get("zero", 1),
        )
        run = Run(
            index=10_000 + j,
            model=c["workload"],
            family=w.family,
            kind="dense",
            chip=cat.resolve(c["chip"]),
            gpus=int(c["n"]),
            precision=w.precision,
            recipe=w.precision,
            layout=lay,
            tokens_per_s_per_gpu=c["tflops_per_gpu"] * 1e12 / conv,
            source=c["source"],
            recompute=L.get("recompute", "none"),
        )
        out.append(dataclasses.replace(run, fits=_fits(run, cat)))
    return tuple(out)


def used_runs(runs=None) -> tuple[Run, ...]:
    """The runs the fit uses (not excluded): the NeMo / Megatron-Bridge rows and
    :func:`other_runs`."""
    if runs is None:
        runs = load_runs() + other_runs()
    return tuple(r for r in runs if not r.excluded)


def _release_key(release: str) -> tuple[int, ...]:
    m = re.match(r"(?:model tag )?(\d+)\.(\d+)(?:\.(\d+))?", release)
    return tuple(int(x or 0) for x in m.groups()) if m else (0, 0, 0)


def latest_release(runs: Sequence[Run]) -> np.ndarray:
    """Mask of the rows from the newest release of their configuration
    (:attr:`Run.config`): what current software does on that job."""
    best: dict[tuple, tuple[int, ...]] = {}
    for r in runs:
        best[r.config] = max(best.get(r.config, (-1,)), _release_key(r.release))
    return np.array([_release_key(r.release) == best[r.config] for r in runs])


def release_spread(runs: Sequence[Run]) -> dict[str, Any]:
    """How much the same job varies between software releases: each row of a
    configuration published in several releases predicted by the geometric mean of
    that configuration's *other* rows (a model that knew the hardware and the job
    exactly but not the release). Its error is a floor for any model that is not told
    the software release."""
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(runs):
        groups.setdefault(r.config, []).append(i)
    y = np.log([r.tokens_per_s_per_gpu for r in runs])
    err, spread = [], []
    for cfg, ix in groups.items():
        if len(ix) < 2:
            continue
        spread.append((float(np.exp(y[ix].max() - y[ix].min())), cfg, len(ix)))
        for i in ix:
            other = [j for j in ix if j != i]
            err.append(100.0 * abs(np.exp(y[other].mean() - y[i]) - 1.0))
    e = np.asarray(err)
    spread.sort(key=lambda t: -t[0])
    return dict(
        rows=int(e.size),
        configs=len(spread),
        mean_abs_pct=float(e.mean()) if e.size else 0.0,
        max_abs_pct=float(e.max()) if e.size else 0.0,
        over_20_pct_share=float((e > 20.0).mean()) if e.size else 0.0,
        widest=[dict(ratio=round(s, 3), config=list(c), rows=n) for s, c, n in spread[:8]],
    )
