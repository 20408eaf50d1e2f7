"""Training-step model: step time, memory and MFU of a workload on N chips, and the
search for the best parallel layout.

The core, :func:`step_time`, is a pure function of pytrees (workload, chip, network,
layout, efficiency assumptions); ``jit``, ``vmap`` and ``grad`` apply to it. The search
(:func:`best_layout`) builds every layout as arrays and evaluates them in ONE
``jit(vmap(step_time))`` call.

Model (per optimizer step; ``t, p, d, c`` tensor/pipeline/data/context parallel sizes,
``b`` micro-batch in samples, ``v`` virtual pipeline stages, ``m = B / (d b)``
micro-batches per pipeline, ``L`` layers):

* compute per layer and micro-batch on one rank: the roofline time
  (:func:`perfmodel.roofline.op_time`) of the layer's forward ops
  (:func:`perfmodel.workloads.layer_ops`); backward = 2 x forward; recomputation adds
  the full forward (``full``) or the attention core + norms + FFN activation
  (``selective``);
* TP: 2 all-reduces of the ``b s/c x d`` activations per layer forward and 2 backward
  (+2 with full recompute); with sequence parallel each is a reduce-scatter +
  all-gather. A fraction ``tp_overlap`` is hidden under compute.
* CP: all-gather of K,V per layer forward (+ all-gather and reduce-scatter backward),
  a fraction ``cp_overlap`` hidden (ring attention overlaps it with the blocks).
* PP: ``2 v`` point-to-point sends of the ``b s/(c t) x d`` activations per
  micro-batch and stage, a fraction ``pp_overlap`` hidden. The output head (and the
  video patch stem) run on the last stage (Megatron's default placement), which is
  therefore the slowest stage.
* micro-batch time ``t_mb`` = ``L/p`` x (compute + exposed TP/CP) + head + exposed PP;
  pipeline time = ``(m + (p-1)/v) t_mb``, so bubble fraction = ``(p-1)/(v m + p-1)``.
* DP (group ``d``, ``min(d, domain/(t c))`` members per scale-up domain, hierarchical):
  ZeRO-0 all-reduce of the gradients, ZeRO-1/2 reduce-scatter of gradients + all-gather
  of the updated weights, ZeRO-3 (FSDP) all-gather of weights forward and backward and
  reduce-scatter of gradients every micro-batch. The gradient reduction is hidden
  under the last micro-batch's backward, the weight all-gather under the next step's
  first forward, except at least ``dp_tail`` of each (the last bucket).
* optimizer: Adam update, memory-bound: 32 byte/parameter of the locally owned shard
  (16 with ``Layout.bf16_states``).
* MFU = model FLOP per step (:func:`perfmodel.workloads.model_flops_per_step`, no
  recompute) / (step time x N x dense peak at the workload precision).

Memory per device (bytes): weights 2/param (4 for fp32/tf32), fp32 gradients 4/param,
Adam fp32 master + 2 moments 12/param (``Layout.bf16_states``: bf16 gradients 2 and
moments 4, +2 for the bf16 shard under FSDP; :func:`perfmodel.training.memory.state_bytes`), sharded over DP by ZeRO stage 1 (optimizer),
2 (+gradients), 3 (+weights); activations per layer and micro-batch counted tensor by
tensor for flash attention without dropout (norm inputs, matmul inputs - 1 byte each
in FP8 -, Q, K, V, O, FFN intermediates: 32 byte per token x hidden for GPT-3 in BF16,
i.e. Korthikanti et al. 2022's 34 less the dropout masks), divided by ``t`` with
sequence parallel (only the TP-sharded part without); ``min(m, p)`` micro-batches in
flight on the first stage (x ``1 + (p-1)/(p v)`` interleaved); fp32 logits and their
gradient. A layout fits if that is at most ``mem_usable`` x DRAM.

Networks come from :mod:`perfmodel.interconnect` (``network_for``,
``collective_time_s``; ``algorithm="auto"``, or ``"smooth"`` with ``smooth=True``).

Search (:func:`best_layout`, :func:`layout_grid`): tp (powers of two dividing the
heads, within the scale-up domain), cp, pp (divisors), dp (the rest, dividing the global
batch), micro-batch, vpp, sp, recompute, ZeRO stage; ~10^4-10^5 layouts per job, all
evaluated in one compiled call; layouts that do not fit are never reported as best.

Efficiency assumptions: ONE set, :func:`default_efficiency` (matmul 0.60 and
attention 0.50 of dense peak, FP8 GEMMs the same fraction of FP8 peak, half of TP
communication hidden, 95% of DRAM usable), checked against :data:`PUBLISHED_RUNS`
(``benchmarks/published_runs.py``).

Inference (:func:`inference_throughput`): forward passes (samples/s or prefill
tokens/s) or LLM decode (tokens/s; each step reads the weights and the KV cache), on
data-parallel replicas of the best fitting tensor-parallel size and batch.
"""

from __future__ import annotations

from perfmodel.training.inference import (
    INFERENCE_MODES as INFERENCE_MODES,
)
from perfmodel.training.inference import (
    inference_throughput as inference_throughput,
)
from perfmodel.training.memory import (
    activation_bytes_per_layer as activation_bytes_per_layer,
)
from perfmodel.training.memory import (
    memory_per_device as memory_per_device,
)
from perfmodel.training.memory import (
    recomputed_share as recomputed_share,
)
from perfmodel.training.published import (
    PUBLISHED_RUNS as PUBLISHED_RUNS,
)
from perfmodel.training.published import (
    published_flops_per_token as published_flops_per_token,
)
from perfmodel.training.published import (
    published_run_prediction as published_run_prediction,
)
from perfmodel.training.search import (
    CP_CHOICES as CP_CHOICES,
)
from perfmodel.training.search import (
    GRID_CHUNK as GRID_CHUNK,
)
from perfmodel.training.search import (
    MB_CHOICES as MB_CHOICES,
)
from perfmodel.training.search import (
    RECOMPUTE_CHOICES as RECOMPUTE_CHOICES,
)
from perfmodel.training.search import (
    TP_CHOICES as TP_CHOICES,
)
from perfmodel.training.search import (
    VPP_CHOICES as VPP_CHOICES,
)
from perfmodel.training.search import (
    ZERO_CHOICES as ZERO_CHOICES,
)
from perfmodel.training.search import (
    TrainResult as TrainResult,
)
from perfmodel.training.search import (
    _eval_grid as _eval_grid,
)
from perfmodel.training.search import (
    _max_tp as _max_tp,
)
from perfmodel.training.search import (
    _pad_grid as _pad_grid,
)
from perfmodel.training.search import (
    best_layout as best_layout,
)
from perfmodel.training.search import (
    evaluate_grid as evaluate_grid,
)
from perfmodel.training.search import (
    evaluate_layout as evaluate_layout,
)
from perfmodel.training.search import (
    layout_grid as layout_grid,
)
from perfmodel.training.search import (
    throughput_curve as throughput_curve,
)
from perfmodel.training.step import (
    _jit_step as _jit_step,
)
from perfmodel.training.step import (
    get_network as get_network,
)
from perfmodel.training.step import (
    step_time as step_time,
)
from perfmodel.training.types import (
    LAYOUT_FIELDS as LAYOUT_FIELDS,
)
from perfmodel.training.types import (
    RECIPE_FLAGS as RECIPE_FLAGS,
)
from perfmodel.training.types import (
    RECOMPUTE as RECOMPUTE,
)
from perfmodel.training.types import (
    Layout as Layout,
)
from perfmodel.training.types import (
    StepResult as StepResult,
)
from perfmodel.training.types import (
    TrainEfficiency as TrainEfficiency,
)
from perfmodel.training.types import (
    default_efficiency as default_efficiency,
)
from perfmodel.training.types import (
    make_layout as make_layout,
)
