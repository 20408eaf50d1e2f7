"""Batch what-if runs at scale: sampled uncertain inputs, jit+vmap evaluation sharded
across devices, resumable Parquet output, summaries and plots.

The engine is :mod:`perfmodel.sweep.engine` (its docstring documents sampling,
sharding, resumption and multi-host runs); the built-in models are in
:mod:`perfmodel.sweep.models` (``chips``) and :mod:`perfmodel.sweep.fleet_model`
(``fleet``).
"""

# The engine does not import the built-in models (they import it): they register here.
from perfmodel.sweep import models as _models
from perfmodel.sweep.engine import (
    DISTRIBUTIONS as DISTRIBUTIONS,
)
from perfmodel.sweep.engine import (
    MODELS as MODELS,
)
from perfmodel.sweep.engine import (
    Model as Model,
)
from perfmodel.sweep.engine import (
    Param as Param,
)
from perfmodel.sweep.engine import (
    SweepRun as SweepRun,
)
from perfmodel.sweep.engine import (
    SweepSpec as SweepSpec,
)
from perfmodel.sweep.engine import (
    _toy_model,
)
from perfmodel.sweep.engine import (
    check_out_dir as check_out_dir,
)
from perfmodel.sweep.engine import (
    load_results as load_results,
)
from perfmodel.sweep.engine import (
    load_spec as load_spec,
)
from perfmodel.sweep.engine import (
    model_available as model_available,
)
from perfmodel.sweep.engine import (
    model_fingerprint as model_fingerprint,
)
from perfmodel.sweep.engine import (
    parse_param as parse_param,
)
from perfmodel.sweep.engine import (
    parse_spec as parse_spec,
)
from perfmodel.sweep.engine import (
    plot_summary as plot_summary,
)
from perfmodel.sweep.engine import (
    register_model as register_model,
)
from perfmodel.sweep.engine import (
    run_sweep as run_sweep,
)
from perfmodel.sweep.engine import (
    sample_params as sample_params,
)
from perfmodel.sweep.engine import (
    summarize as summarize,
)
from perfmodel.sweep.engine import (
    sweep_lock as sweep_lock,
)

register_model("fleet", _models.fleet_model, available=_models.fleet_available)
register_model("chips", _models.chips_model)
register_model("toy", _toy_model)
