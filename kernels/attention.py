"""Moved to :mod:`perfmodel.kernels.attention`; ``kernels.attention`` is that same module, kept so
that scripts run from a source checkout keep working."""

import sys

from perfmodel.kernels import attention as _module

sys.modules[__name__] = _module
