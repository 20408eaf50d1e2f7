"""Sensitivities of the fleet LP's optimum.

- :mod:`~perfmodel.fleet.sensitivity.envelope`: gradients of the optimum in every LP field
  by the envelope theorem (formulas there), and finite differences to check them;
- :mod:`~perfmodel.fleet.sensitivity.named`: the same by row and variable name, ranked in
  tables and sentences;
- :mod:`~perfmodel.fleet.sensitivity.natural`: what one natural step of each resource or
  rule of a fleet plan is worth (HiGHS duals, ranging and re-solves), delays and prices
  included;
- :mod:`~perfmodel.fleet.sensitivity.spec`: the plan's gradient in a chip spec through
  the value curves (training model at the best layouts, LP envelope), checked against
  re-plans.
"""

from perfmodel.fleet.sensitivity.envelope import (
    LPGradients,
    envelope_grad,
    finite_difference,
    highs_optimum,
    lagrangian,
    objective_gradients,
    scale_sensitivity,
    spec_gradient,
)
from perfmodel.fleet.sensitivity.named import (
    row_index,
    row_sensitivity,
    sensitivity_lines,
    sensitivity_table,
    var_index,
    var_sensitivity,
)
from perfmodel.fleet.sensitivity.natural import (
    natural_sensitivities,
    range_text,
    sensitivity_sentence,
)
from perfmodel.fleet.sensitivity.spec import (
    plan_spec_gradient,
    spec_gradient_fd,
    spec_gradient_sentence,
    spec_gradients,
)

__all__ = [
    "LPGradients",
    "objective_gradients",
    "lagrangian",
    "envelope_grad",
    "spec_gradient",
    "scale_sensitivity",
    "highs_optimum",
    "row_sensitivity",
    "var_sensitivity",
    "row_index",
    "var_index",
    "sensitivity_lines",
    "sensitivity_table",
    "finite_difference",
    "natural_sensitivities",
    "sensitivity_sentence",
    "range_text",
    "plan_spec_gradient",
    "spec_gradient_fd",
    "spec_gradients",
    "spec_gradient_sentence",
]
