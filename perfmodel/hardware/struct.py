"""Frozen dataclass pytrees: what ``flax.struct`` gives (``dataclass``, ``field``,
``.replace``), on :func:`jax.tree_util.register_dataclass` alone.

``flax.struct.dataclass`` is that registration plus Flax's serialization hooks (which
perfmodel does not use); importing it imports all of Flax (0.3 s on 2 cores, on top of
JAX's 1 s), which a one-off ``perfmodel roofline`` or ``net`` would otherwise pay. The
pytrees (leaves, their order, the static fields) are the same as with Flax.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

import jax

_T = TypeVar("_T")


def field(pytree_node: bool = True, *, metadata: dict | None = None, **kwargs) -> Any:
    """A dataclass field; ``pytree_node=False`` makes it static (part of the tree's
    structure, not a leaf)."""
    return dataclasses.field(metadata=(metadata or {}) | {"pytree_node": pytree_node}, **kwargs)


@overload
def dataclass(clz: type[_T], **kwargs) -> type[_T]: ...


@overload
def dataclass(**kwargs) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(field_specifiers=(field,), frozen_default=True)
def dataclass(clz: type[_T] | None = None, **kwargs) -> Any:
    """A frozen dataclass registered as a JAX pytree (fields are leaves unless declared
    with ``field(pytree_node=False)``), with ``replace(**updates)``."""
    if clz is None:
        return lambda c: dataclass(c, **kwargs)
    kwargs.setdefault("frozen", True)
    data_clz: Any = dataclasses.dataclass(**kwargs)(clz)
    fields = dataclasses.fields(data_clz)
    data = [f.name for f in fields if f.metadata.get("pytree_node", True)]
    meta = [f.name for f in fields if not f.metadata.get("pytree_node", True)]

    def replace(self, **updates):
        """A copy with the given fields replaced."""
        return dataclasses.replace(self, **updates)

    data_clz.replace = replace
    jax.tree_util.register_dataclass(data_clz, data, meta)
    return data_clz
