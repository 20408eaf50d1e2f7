"""The workload presets (``perfmodel/data/workloads.toml``), their checks, and workloads
built from a dict or a file (see :mod:`perfmodel.workloads`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perfmodel.choices import WORKLOAD_PRESETS_FILE, workload_presets_toml
from perfmodel.hardware import read_toml
from perfmodel.workloads.shape import (
    NUMERIC_FIELDS,
    WORK_UNITS,
    Workload,
    _check_pos_int,
    _check_precision,
    _f,
)

# --------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------

VIDEO_DRIVING_NOTES = """\
video-driving: an end-to-end driving model of the kind trained on fleet video (our
assumptions; Tesla has not published its architecture):
  * 8 cameras (the HW3/HW4 camera count), 4 frames of temporal context per sample;
  * each frame down-sampled to 640 x 480 and cut into 32 x 32 patches -> 20 x 15 = 300
    patches per camera-frame; tokens per sample = 8 x 4 x 300 = 9,600;
  * a linear patch embedding (3 x 32 x 32 = 3,072 inputs -> 1,024) into a ViT-L-sized
    backbone: 24 layers, hidden 1,024, 16 heads, FFN 4,096, full (non-causal)
    space-time attention over all 9,600 tokens; a 256-wide per-token output head
    (occupancy / trajectory decoders folded into it);
  * ~306 M parameters; forward ~1.5e13 FLOP per sample, of which ~60% is attention;
  * global batch 1,024 samples; BF16 training, int8 in-car inference.
"""

#: The preset shapes, each with its public source (``[sources]`` of the file).
PRESETS_FILE = WORKLOAD_PRESETS_FILE


def _load_presets() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, str]]:
    data = workload_presets_toml()  # read once, also for the parsers' preset names
    sources = {str(k): str(v) for k, v in data.get("sources", {}).items()}
    specs, meta = {}, {}
    for name, d in data["workloads"].items():
        d = dict(d)
        meta[name] = {k: d.get(k) for k in ("kind", "source", "note")}
        specs[name] = _from_schema(d)
    return specs, meta, sources


#: Numeric MoE / attention / hybrid fields of :func:`make_workload` and their ranges.
EXTRA_FIELDS: dict[str, tuple[int, int]] = {
    "experts": (0, 4096),
    "top_k": (0, 64),
    "moe_ffn": (0, 10**6),
    "shared_ffn": (0, 10**6),
    "moe_layers": (0, 10**4),
    "dense_layers": (-1, 10**4),
    "attention_layers": (-1, 10**4),
    "mamba_layers": (0, 10**4),
    "mamba_inner": (0, 10**6),
    "mamba_state": (0, 10**6),
    "head_size": (0, 4096),
    "q_lora_rank": (0, 10**5),
    "kv_lora_rank": (0, 10**5),
    "rope_head_dim": (0, 4096),
    "v_head_dim": (0, 4096),
    "window": (0, 10**8),
    "window_layers": (0, 10**4),
    "moe_latent": (0, 10**6),
}
ATTENTION_KINDS = ("gqa", "mla")


def make_workload(
    *,
    name: str = "custom",
    layers: int,
    hidden: int,
    heads: int,
    kv_heads: int | None = None,
    ffn: int | None = None,
    vocab: int = 50257,
    seq: int = 2048,
    global_batch: int = 1024,
    patch_dim: int = 0,
    precision: str = "bf16",
    gated_ffn: bool = False,
    causal: bool = True,
    unit: str = "token",
    attention: str = "gqa",
    family: str = "custom",
    **extra: Any,
) -> Workload:
    """Validate sizes and build a :class:`Workload` (raises ``ValueError`` naming the
    field, the value and the allowed range). ``kv_heads`` defaults to ``heads``;
    ``ffn`` to ``4 * hidden``. ``extra``: the MoE, attention-variant and hybrid fields
    of :data:`EXTRA_FIELDS` (all 0 for a dense transformer)."""
    kv_heads = heads if kv_heads is None else kv_heads
    ffn = 4 * hidden if ffn is None else ffn
    vals = dict(
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        ffn=ffn,
        vocab=vocab,
        seq=seq,
        global_batch=global_batch,
    )
    for k, v in vals.items():
        lo = 0 if k == "ffn" else 1
        _check_pos_int(k, v, lo, 10**8)
    _check_pos_int("patch_dim", patch_dim, 0, 10**7)
    unknown = set(extra) - set(EXTRA_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown workload field(s) {sorted(unknown)}; allowed: {sorted(EXTRA_FIELDS)}"
        )
    ex = {k: EXTRA_FIELDS[k][0] if EXTRA_FIELDS[k][0] < 0 else 0 for k in EXTRA_FIELDS}
    for k, v in extra.items():
        ex[k] = _check_pos_int(k, v, *EXTRA_FIELDS[k])
    if attention not in ATTENTION_KINDS:
        raise ValueError(
            f"workload field 'attention' = {attention!r} must be one of {ATTENTION_KINDS}"
        )
    if ex["head_size"] == 0 and hidden % heads:
        raise ValueError(f"workload field 'heads' = {heads} must divide hidden = {hidden}")
    if heads % kv_heads:
        raise ValueError(f"workload field 'kv_heads' = {kv_heads} must divide heads = {heads}")
    if ex["experts"] > 0:
        if not 1 <= ex["top_k"] <= ex["experts"]:
            raise ValueError(
                f"workload field 'top_k' = {ex['top_k']} must be in [1, experts = {ex['experts']}]"
            )
        if ex["moe_ffn"] < 1:
            raise ValueError("workload field 'moe_ffn' = 0 must be >= 1 for an MoE model")
        if not 1 <= ex["moe_layers"] <= layers:
            raise ValueError(
                f"workload field 'moe_layers' = {ex['moe_layers']} must be in [1, layers = {layers}]"
            )
        if ex["moe_latent"] > hidden:
            raise ValueError(
                f"workload field 'moe_latent' = {ex['moe_latent']} must be in [0, hidden = "
                f"{hidden}] (0 = experts on the full hidden width)"
            )
    elif ex["moe_layers"] or ex["top_k"] or ex["moe_latent"]:
        raise ValueError("workload fields 'moe_layers'/'top_k'/'moe_latent' need 'experts' >= 1")
    n_attn = layers if ex["attention_layers"] < 0 else ex["attention_layers"]
    if ex["window_layers"] > n_attn:
        raise ValueError(
            f"workload field 'window_layers' = {ex['window_layers']} must be in "
            f"[0, attention layers = {n_attn}]"
        )
    if ex["window_layers"] and ex["window"] < 1:
        raise ValueError("workload field 'window' = 0 must be >= 1 with window_layers > 0")
    _check_precision(precision, allow_int8=True)
    if unit not in WORK_UNITS:
        raise ValueError(f"workload field 'unit' = {unit!r} must be one of {WORK_UNITS}")
    for k, v in (("gated_ffn", gated_ffn), ("causal", causal)):
        if not isinstance(v, bool):
            raise ValueError(f"workload field '{k}' = {v!r} must be true or false")
    return Workload(
        **{k: _f(v) for k, v in vals.items()},
        patch_dim=_f(patch_dim),
        **{k: _f(v) for k, v in ex.items()},
        name=name,
        precision=precision,
        gated_ffn=gated_ffn,
        causal=causal,
        unit=unit,
        attention=attention,
        family=family,
    )


#: Preset-file keys that describe a preset but are not model fields.
_DESCRIPTIVE = (
    "kind",
    "source",
    "note",
    "tied_embeddings",
    "mtp_layers",
)


def _from_schema(d: dict[str, Any]) -> dict[str, Any]:
    """Translate the preset-file schema (``perfmodel/data/workloads.toml``) into
    :func:`make_workload` arguments: ``head_dim`` -> ``head_size``, ``shared_experts``
    x ``moe_ffn`` -> ``shared_ffn``, Mamba heads x head size -> ``mamba_inner``, groups x
    state -> ``mamba_state``."""
    d = {k: v for k, v in d.items() if k not in _DESCRIPTIVE}
    if "head_dim" in d:
        d["head_size"] = d.pop("head_dim")
    se = d.pop("shared_experts", 0)
    if se and "shared_ffn" not in d:
        d["shared_ffn"] = se * d.get("moe_ffn", 0)
    mh, mhd = d.pop("mamba_heads", 0), d.pop("mamba_head_dim", 0)
    if mh:
        d["mamba_inner"] = mh * mhd
    mg = d.pop("mamba_groups", 0)
    if mg and "mamba_state" in d:
        d["mamba_state"] = mg * d["mamba_state"]
    return d


_P, PRESET_META, PRESET_SOURCES = _load_presets()
#: The preset names in file order (:func:`perfmodel.choices.workload_names`, which the
#: command-line parsers list without building a workload).
WORKLOAD_NAMES: tuple[str, ...] = tuple(_P)


def get_workload(name: str) -> Workload:
    """A preset workload by name (see :data:`WORKLOAD_NAMES`).

    Example: ``get_workload("gpt3-175b")`` has 174.6e9 parameters."""
    key = name.strip().lower().replace("_", "-")
    if key not in _P:
        raise KeyError(f"unknown workload '{name}'; known: {', '.join(WORKLOAD_NAMES)}")
    return make_workload(name=key, **_P[key])


def workload_from_dict(d: dict[str, Any], name: str = "custom") -> Workload:
    """Build a workload from a mapping (e.g. a TOML table); ``base = "preset"`` starts
    from a preset and overrides its fields."""
    known = set(NUMERIC_FIELDS) | {
        "name",
        "precision",
        "gated_ffn",
        "causal",
        "unit",
        "base",
        "attention",
        "family",
    }
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown workload field(s) {sorted(unknown)}; allowed: {sorted(known)}")
    spec: dict[str, Any] = {}
    if "base" in d:
        base = str(d["base"]).strip().lower()
        if base not in _P:
            raise KeyError(f"unknown base workload '{base}'; known: {', '.join(WORKLOAD_NAMES)}")
        spec.update(_P[base])
    spec.update({k: v for k, v in d.items() if k != "base"})
    spec.setdefault("name", name)
    missing = [k for k in ("layers", "hidden", "heads") if k not in spec]
    if missing:
        raise ValueError(f"workload is missing required field(s) {missing}")
    return make_workload(**spec)


def load_workload_file(path: str | Path) -> Workload:
    """A workload from a TOML file: top-level keys, or a ``[workload]`` table."""
    p = Path(path)
    data = read_toml(p, "workload")
    data = data.get("workload", data)
    return workload_from_dict(dict(data), name=p.stem)
