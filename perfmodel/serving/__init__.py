"""The inference serving model: prefill and decode on the roofline and interconnect
models, KV-cache bytes, memory-limited batch, TP/PP/EP layouts, and the MLPerf
Offline / Server / Interactive scenarios, fitted to published MLPerf Inference results.

Data flow: :mod:`~perfmodel.serving.types` (pytrees) -> :mod:`~perfmodel.serving.step`
(one replica's prefill and decode step) -> :mod:`~perfmodel.serving.scenarios`
(operating point under latency limits) -> :mod:`~perfmodel.serving.fit` (least squares
and cross-validation on :mod:`~perfmodel.serving.data`) -> :mod:`~perfmodel.serving.api`
(the validated host entry point behind ``perfmodel serve``) -> :mod:`~perfmodel.serving.rate`
(the stable per-chip entry point for the planner and the equivalence tables:
:func:`inference_rate`, tokens/s at a latency target, and :func:`inference_h100e`).
"""

from perfmodel.serving.api import serve as serve
from perfmodel.serving.data import SCENARIOS as SCENARIOS
from perfmodel.serving.data import load_mlperf_rows as load_mlperf_rows
from perfmodel.serving.data import make_requests as make_requests
from perfmodel.serving.rate import InferenceRate as InferenceRate
from perfmodel.serving.rate import inference_h100e as inference_h100e
from perfmodel.serving.rate import inference_rate as inference_rate
from perfmodel.serving.scenarios import ServeResult as ServeResult
from perfmodel.serving.scenarios import at_batch as at_batch
from perfmodel.serving.scenarios import operating_point as operating_point
from perfmodel.serving.step import decode_step_s as decode_step_s
from perfmodel.serving.step import kv_bytes_per_token as kv_bytes_per_token
from perfmodel.serving.step import max_batch as max_batch
from perfmodel.serving.step import memory_per_chip as memory_per_chip
from perfmodel.serving.step import prefill_s as prefill_s
from perfmodel.serving.types import Layout as Layout
from perfmodel.serving.types import Requests as Requests
from perfmodel.serving.types import ServeEfficiency as ServeEfficiency
from perfmodel.serving.types import default_efficiency as default_efficiency
from perfmodel.serving.types import make_layout as make_layout
