"""Batch what-if runs at scale: sampled uncertain inputs, jit+vmap evaluation sharded
across devices, resumable Parquet output, summaries and plots.

The engine is :mod:`perfmodel.sweep.engine` (its docstring documents sampling,
sharding, resumption and multi-host runs); the built-in models are in
:mod:`perfmodel.sweep.models` (``chips``) and :mod:`perfmodel.sweep.fleet_model`
(``fleet``).
"""

from perfmodel.sweep.engine import (
    DISTRIBUTIONS as DISTRIBUTIONS,
    MODELS as MODELS,
    Model as Model,
    Param as Param,
    SweepRun as SweepRun,
    SweepSpec as SweepSpec,
    load_results as load_results,
    load_spec as load_spec,
    parse_param as parse_param,
    parse_spec as parse_spec,
    plot_summary as plot_summary,
    run_sweep as run_sweep,
    sample_params as sample_params,
    summarize as summarize,
)
