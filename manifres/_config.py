"""Global switches: opt-in validation of values (on-manifold, tangent, finite, cut locus)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["set_validation", "get_validation", "validation"]

_VALIDATE = False


def set_validation(enabled: bool) -> None:
    """Switch value checks on or off for every manifold built with ``validate=None``.

    Value checks (is the point on the manifold, is the vector tangent, are the inputs finite,
    is a log asked at the cut locus) read tensor values, which costs a host-device
    synchronisation on GPUs. They are off by default; shape, dtype and device checks are
    always on (they read metadata only).

    Examples
    --------
    >>> import manifres
    >>> manifres.set_validation(True); manifres.get_validation()
    True
    >>> manifres.set_validation(False)
    """
    global _VALIDATE
    _VALIDATE = bool(enabled)


def get_validation() -> bool:
    """Return whether global value validation is on."""
    return _VALIDATE


@contextlib.contextmanager
def validation(enabled: bool = True) -> Iterator[None]:
    """Context manager that switches global validation on (or off) inside a ``with`` block.

    Examples
    --------
    >>> import torch, manifres
    >>> with manifres.validation():
    ...     try:
    ...         manifres.Sphere(2).exp(torch.tensor([2.0, 0, 0]), torch.zeros(3))
    ...     except manifres.errors.ManifoldError:
    ...         print("caught")
    caught
    """
    global _VALIDATE
    old = _VALIDATE
    _VALIDATE = bool(enabled)
    try:
        yield
    finally:
        _VALIDATE = old
