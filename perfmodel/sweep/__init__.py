"""Batch what-if runs at scale: sampled uncertain inputs, jit+vmap evaluation sharded
across devices and processes (``jax.distributed``), resumable Parquet output, summaries
and plots.

The run loop is :mod:`perfmodel.sweep.engine` (its docstring maps the modules: params,
spec, chunks, store, distributed, results); the built-in models are in
:mod:`perfmodel.sweep.models` (``chips``) and :mod:`perfmodel.sweep.fleet_model`
(``fleet``).
"""

# The engine does not import the built-in models (they import it): they register here.
from perfmodel.sweep import fleet_model as _fleet_model
from perfmodel.sweep import models as _models
from perfmodel.sweep.distributed import Cluster as Cluster
from perfmodel.sweep.engine import SweepRun as SweepRun
from perfmodel.sweep.engine import run_sweep as run_sweep
from perfmodel.sweep.params import DISTRIBUTIONS as DISTRIBUTIONS
from perfmodel.sweep.params import Param as Param
from perfmodel.sweep.params import parse_param as parse_param
from perfmodel.sweep.params import sample_params as sample_params
from perfmodel.sweep.results import plot_summary as plot_summary
from perfmodel.sweep.results import summarize as summarize
from perfmodel.sweep.spec import MODELS as MODELS
from perfmodel.sweep.spec import Model as Model
from perfmodel.sweep.spec import SweepSpec as SweepSpec
from perfmodel.sweep.spec import _toy_model
from perfmodel.sweep.spec import load_spec as load_spec
from perfmodel.sweep.spec import model_available as model_available
from perfmodel.sweep.spec import parse_spec as parse_spec
from perfmodel.sweep.spec import register_model as register_model
from perfmodel.sweep.store import check_out_dir as check_out_dir
from perfmodel.sweep.store import load_results as load_results
from perfmodel.sweep.store import model_fingerprint as model_fingerprint
from perfmodel.sweep.store import sweep_lock as sweep_lock

register_model("fleet", _fleet_model.fleet_model)
register_model("chips", _models.chips_model)
register_model("toy", _toy_model)
