"""Interconnect: time of collectives on the network of a cluster (alpha-beta models).

* :mod:`~perfmodel.interconnect.network`: the :class:`Network` pytree and its checks;
* :mod:`~perfmodel.interconnect.collectives`: the collective-time formulas (the module
  docstring there gives the conventions, formulas, units and sources);
* :mod:`~perfmodel.interconnect.topology`: networks built from the catalog
  (:func:`topology_for`, :func:`network_for`);
* :mod:`~perfmodel.interconnect.report`: the plain-text report of ``perfmodel net``.

Example::

    >>> from perfmodel.interconnect import network_for, collective_time_s
    >>> net = network_for("h100_sxm")                  # DGX H100: NVLink4 x8 + NDR IB
    >>> t = collective_time_s("all_reduce", 1e9, 64, net)   # 1 GB over 8 nodes, s
"""

from typing import Any

from perfmodel.interconnect.collectives import ALGORITHMS as ALGORITHMS
from perfmodel.interconnect.collectives import KINDS as KINDS
from perfmodel.interconnect.collectives import SMOOTH_P as SMOOTH_P
from perfmodel.interconnect.collectives import VALID_ALGORITHMS as VALID_ALGORITHMS
from perfmodel.interconnect.collectives import algorithm_times_s as algorithm_times_s
from perfmodel.interconnect.collectives import best_algorithm as best_algorithm
from perfmodel.interconnect.collectives import (
    bus_bandwidth_bytes_per_s as bus_bandwidth_bytes_per_s,
)
from perfmodel.interconnect.collectives import collective_time_s as collective_time_s
from perfmodel.interconnect.collectives import hard_min as hard_min
from perfmodel.interconnect.collectives import mesh2d_rs_time_s as mesh2d_rs_time_s
from perfmodel.interconnect.collectives import point_to_point_time_s as point_to_point_time_s
from perfmodel.interconnect.collectives import ring_time_s as ring_time_s
from perfmodel.interconnect.collectives import smooth_min as smooth_min
from perfmodel.interconnect.collectives import tree_time_s as tree_time_s
from perfmodel.interconnect.network import Network as Network
from perfmodel.interconnect.network import (
    default_switch_reduction_ratio as default_switch_reduction_ratio,
)
from perfmodel.interconnect.network import validate_network as validate_network
from perfmodel.interconnect.report import describe as describe
from perfmodel.interconnect.topology import DEFAULT_SYSTEM as DEFAULT_SYSTEM
from perfmodel.interconnect.topology import FALLBACK_TOPOLOGY as FALLBACK_TOPOLOGY
from perfmodel.interconnect.topology import Topology as Topology
from perfmodel.interconnect.topology import network_for as network_for
from perfmodel.interconnect.topology import topology_for as topology_for


def __getattr__(name: str) -> Any:
    # ``NVLS_RATIO`` (kept for existing callers): default_switch_reduction_ratio(), read
    # lazily from the catalog, so importing this module does not load the catalog.
    if name == "NVLS_RATIO":
        return default_switch_reduction_ratio()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ALGORITHMS",
    "KINDS",
    "VALID_ALGORITHMS",
    "SMOOTH_P",
    "Network",
    "Topology",
    "algorithm_times_s",
    "best_algorithm",
    "bus_bandwidth_bytes_per_s",
    "collective_time_s",
    "default_switch_reduction_ratio",
    "describe",
    "hard_min",
    "mesh2d_rs_time_s",
    "network_for",
    "point_to_point_time_s",
    "ring_time_s",
    "smooth_min",
    "topology_for",
    "tree_time_s",
    "validate_network",
]
