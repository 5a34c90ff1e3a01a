r"""Operators cached per graph, never served stale.

A cached value is stored with a :class:`GraphKey`: for each tensor it depends on, a weak
reference (the same object), its version counter (no in-place edit since), its shape, dtype
and device, plus any extra hashable (node count, features' dtype and device, normalisation).
A lookup compares these Python values only: no tensor is read, so no host-device
synchronisation.

:class:`OperatorCache` holds one entry per slot name. It is dropped, never copied, by
``copy.deepcopy`` and pickling (a copied module rebuilds its operators on first use), and
modules clear it in ``_apply`` (``.to()``, ``.cuda()``, ``.double()``) and when a state dict
is loaded. Inference tensors (made under ``torch.inference_mode``) have no version counter, so
nothing that depends on one is cached.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable
from typing import Any

from torch import Tensor

__all__ = ["GraphKey", "OperatorCache"]


def _state(t: Tensor | None) -> tuple:
    if t is None:
        return (None,)
    return (t._version, t.shape, t.dtype, t.device)


class GraphKey:
    """Identity, version, shape, dtype and device of some tensors, plus extra hashables."""

    __slots__ = ("refs", "state")

    def __init__(self, tensors: tuple[Tensor | None, ...], extra: Hashable) -> None:
        self.refs = tuple(None if t is None else weakref.ref(t) for t in tensors)
        self.state = (tuple(_state(t) for t in tensors), extra)

    @staticmethod
    def cacheable(tensors: tuple[Tensor | None, ...]) -> bool:
        """False if a tensor has no version counter (an inference tensor)."""
        return not any(t is not None and t.is_inference() for t in tensors)

    def matches(self, tensors: tuple[Tensor | None, ...], extra: Hashable) -> bool:
        if len(tensors) != len(self.refs):
            return False
        for ref, t in zip(self.refs, tensors, strict=True):
            if (ref is None) != (t is None) or (ref is not None and ref() is not t):
                return False
        if not self.cacheable(tensors):
            return False
        return self.state == (tuple(_state(t) for t in tensors), extra)


class OperatorCache:
    """Named slots, each holding one ``(GraphKey, value)`` pair.

    Examples
    --------
    >>> import copy, torch
    >>> cache, ei = OperatorCache(), torch.zeros(2, 3, dtype=torch.long)
    >>> cache.put("op", (ei,), 5, "value")
    >>> cache.get("op", (ei,), 5)
    'value'
    >>> ei.add_(1)  # an in-place edit: a new version, so the entry is stale
    tensor([[1, 1, 1],
            [1, 1, 1]])
    >>> cache.get("op", (ei,), 5) is None, len(copy.deepcopy(cache))
    (True, 0)
    """

    def __init__(self) -> None:
        self._slots: dict[str, tuple[GraphKey, Any]] = {}

    def get(self, slot: str, tensors: tuple[Tensor | None, ...], extra: Hashable) -> Any:
        """The value stored for exactly these tensors (unchanged) and ``extra``, else None."""
        item = self._slots.get(slot)
        if item is None or not item[0].matches(tensors, extra):
            return None
        return item[1]

    def put(self, slot: str, tensors: tuple[Tensor | None, ...], extra: Hashable, value: Any) -> None:
        """Store ``value`` (replacing the slot's entry); nothing for inference tensors."""
        if GraphKey.cacheable(tensors):
            self._slots[slot] = (GraphKey(tensors, extra), value)
        else:
            self._slots.pop(slot, None)

    def clear(self) -> None:
        self._slots.clear()

    def __len__(self) -> int:
        return len(self._slots)

    def __deepcopy__(self, memo: dict) -> OperatorCache:
        return OperatorCache()

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self._slots = {}
