"""Moved to :mod:`perfmodel.kernels.reduction`; ``kernels.reduction`` is that same module, kept so
that scripts run from a source checkout keep working."""

import sys

from perfmodel.kernels import reduction as _module

sys.modules[__name__] = _module
