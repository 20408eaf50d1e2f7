"""Moved to :mod:`perfmodel.kernels.collectives`; ``kernels.collectives`` is that same
module, kept so that scripts run from a source checkout keep working
(``python -m kernels.collectives`` runs ``python -m perfmodel.kernels.collectives``)."""

import sys

from perfmodel.kernels import collectives as _module

if __name__ == "__main__":
    sys.exit(_module._main())
sys.modules[__name__] = _module
