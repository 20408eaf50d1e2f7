"""Training workloads: dense decoder transformers and a multi-camera video model.

A :class:`Workload` is a pytree. Its sizes (layers, hidden, heads, ...) are float
leaves, so a workload can be traced, stacked and differentiated like a chip; its name,
precision and structural flags (gated FFN, causal attention, work unit) are static.

FLOP counts (per token, forward, dense; ``d`` hidden, ``L`` layers, ``f`` FFN width,
``d_kv = kv_heads * d / heads``, ``V`` output width, ``s`` sequence, ``P`` patch dim)::

    matmul params    N_mm = L (d (d + 2 d_kv) + d d + (3 if gated else 2) d f) + V d (+ P d)
    forward          F    = 2 N_mm + 4 L s d * (1/2 if causal)        (attention QK^T and PV)
    model FLOPs      3 F   (backward = 2x forward)                    -> MFU numerator
    hardware FLOPs   3 F + F_recompute  (full: +F; selective: + the attention term only)

The per-op lists that the training model times with :mod:`perfmodel.roofline` are built
by :func:`layer_ops` and :func:`head_ops` (one micro-batch on one tensor-parallel rank).

Presets (:data:`WORKLOAD_NAMES`): GPT-3 175B (original, MLPerf and Megatron variants),
Megatron 1T, Llama 3 8B/70B/405B, and ``video-driving`` (see :data:`VIDEO_DRIVING_NOTES`).
"""

from perfmodel.workloads.ops import (
    ATTENTION_OP_INDEX as ATTENTION_OP_INDEX,
)
from perfmodel.workloads.ops import (
    _attention_op as _attention_op,
)
from perfmodel.workloads.ops import (
    activation_dtype as activation_dtype,
)
from perfmodel.workloads.ops import (
    decode_layer_ops as decode_layer_ops,
)
from perfmodel.workloads.ops import (
    gemm_input_elements as gemm_input_elements,
)
from perfmodel.workloads.ops import (
    head_ops as head_ops,
)
from perfmodel.workloads.ops import (
    layer_ops as layer_ops,
)
from perfmodel.workloads.ops import (
    stem_op as stem_op,
)
from perfmodel.workloads.ops import (
    tokens_per_expert as tokens_per_expert,
)
from perfmodel.workloads.presets import (
    _DESCRIPTIVE as _DESCRIPTIVE,
)
from perfmodel.workloads.presets import (
    _P as _P,
)
from perfmodel.workloads.presets import (
    ATTENTION_KINDS as ATTENTION_KINDS,
)
from perfmodel.workloads.presets import (
    EXTRA_FIELDS as EXTRA_FIELDS,
)
from perfmodel.workloads.presets import (
    PRESET_META as PRESET_META,
)
from perfmodel.workloads.presets import (
    PRESET_SOURCES as PRESET_SOURCES,
)
from perfmodel.workloads.presets import (
    PRESETS_FILE as PRESETS_FILE,
)
from perfmodel.workloads.presets import (
    VIDEO_DRIVING_NOTES as VIDEO_DRIVING_NOTES,
)
from perfmodel.workloads.presets import (
    WORKLOAD_NAMES as WORKLOAD_NAMES,
)
from perfmodel.workloads.presets import (
    _from_schema as _from_schema,
)
from perfmodel.workloads.presets import (
    _load_presets as _load_presets,
)
from perfmodel.workloads.presets import (
    get_workload as get_workload,
)
from perfmodel.workloads.presets import (
    load_workload_file as load_workload_file,
)
from perfmodel.workloads.presets import (
    make_workload as make_workload,
)
from perfmodel.workloads.presets import (
    workload_from_dict as workload_from_dict,
)
from perfmodel.workloads.shape import (
    NUMERIC_FIELDS as NUMERIC_FIELDS,
)
from perfmodel.workloads.shape import (
    TRAIN_PRECISIONS as TRAIN_PRECISIONS,
)
from perfmodel.workloads.shape import (
    WORK_UNITS as WORK_UNITS,
)
from perfmodel.workloads.shape import (
    Workload as Workload,
)
from perfmodel.workloads.shape import (
    _check_pos_int as _check_pos_int,
)
from perfmodel.workloads.shape import (
    _check_precision as _check_precision,
)
from perfmodel.workloads.shape import (
    _f as _f,
)
from perfmodel.workloads.shape import (
    _fractions as _fractions,
)
from perfmodel.workloads.shape import (
    _n_ffn as _n_ffn,
)
from perfmodel.workloads.shape import (
    active_layer_params as active_layer_params,
)
from perfmodel.workloads.shape import (
    active_param_count as active_param_count,
)
from perfmodel.workloads.shape import (
    attention_flops_per_token as attention_flops_per_token,
)
from perfmodel.workloads.shape import (
    attention_params as attention_params,
)
from perfmodel.workloads.shape import (
    dense_layer_params as dense_layer_params,
)
from perfmodel.workloads.shape import (
    embedding_params as embedding_params,
)
from perfmodel.workloads.shape import (
    expert_params as expert_params,
)
from perfmodel.workloads.shape import (
    forward_flops_per_token as forward_flops_per_token,
)
from perfmodel.workloads.shape import (
    head_params as head_params,
)
from perfmodel.workloads.shape import (
    latent_params as latent_params,
)
from perfmodel.workloads.shape import (
    layer_params as layer_params,
)
from perfmodel.workloads.shape import (
    mamba_params as mamba_params,
)
from perfmodel.workloads.shape import (
    matmul_params as matmul_params,
)
from perfmodel.workloads.shape import (
    model_flops_per_step as model_flops_per_step,
)
from perfmodel.workloads.shape import (
    model_flops_per_token as model_flops_per_token,
)
from perfmodel.workloads.shape import (
    param_count as param_count,
)
from perfmodel.workloads.shape import (
    units_per_step as units_per_step,
)
from perfmodel.workloads.shape import (
    window_keys as window_keys,
)
