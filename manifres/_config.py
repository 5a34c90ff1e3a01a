"""Global switches: opt-in validation of values (on-manifold, tangent, finite, cut locus).

Two layers decide whether value checks run for a manifold built with ``validate=None``:

* the process-wide default, set by :func:`set_validation` (off at import);
* a per-context override, set by ``with validation(...):`` for the code inside the block.
  It lives in a :class:`contextvars.ContextVar`, so it stays in the thread (or asyncio task)
  that entered the block: one thread's ``with validation():`` never switches checks on in
  another thread.

:func:`get_validation` returns the override where one is in effect, else the default.

Examples
--------
>>> import threading, manifres
>>> seen = []
>>> with manifres.validation():
...     t = threading.Thread(target=lambda: seen.append(manifres.get_validation()))
...     t.start(); t.join()
...     seen.append(manifres.get_validation())
>>> seen  # the other thread still sees the default
[False, True]
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch

__all__ = ["set_validation", "get_validation", "validation"]

_DEFAULT = False
_OVERRIDE: contextvars.ContextVar[bool | None] = contextvars.ContextVar("manifres_validation", default=None)


def set_validation(enabled: bool) -> None:
    """Switch value checks on or off, process-wide, for every manifold built with
    ``validate=None``.

    Value checks (is the point on the manifold, is the vector tangent, are the inputs finite,
    is a log asked at the cut locus) read tensor values, which costs a host-device
    synchronisation on GPUs. They are off by default; shape, dtype and device checks are
    always on (they read metadata only). Inside a ``with validation(...):`` block the block's
    setting wins, in that thread or task only.

    Examples
    --------
    >>> import manifres
    >>> manifres.set_validation(True); manifres.get_validation()
    True
    >>> manifres.set_validation(False)
    """
    global _DEFAULT
    _DEFAULT = bool(enabled)


@torch.compiler.assume_constant_result
def get_validation() -> bool:
    """Return whether value validation is on here: the override of the innermost
    ``with validation(...):`` block of this thread or task, else the process-wide default.

    Under :func:`torch.compile` the call is not traced (Dynamo cannot trace
    :meth:`contextvars.ContextVar.get`; it would break the graph): it is marked
    :func:`torch.compiler.assume_constant_result`, so the value in effect when a function is
    compiled is baked into its graph (``fullgraph=True`` works). Changing the setting later
    does not recompile: call :func:`torch._dynamo.reset` (or compile again) after switching.
    """
    override = _OVERRIDE.get()
    return _DEFAULT if override is None else override


@contextlib.contextmanager
def validation(enabled: bool = True) -> Iterator[None]:
    """Context manager that switches validation on (or off) inside a ``with`` block, for
    the current thread or asyncio task only (a :class:`contextvars.ContextVar`).

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
    token = _OVERRIDE.set(bool(enabled))
    try:
        yield
    finally:
        _OVERRIDE.reset(token)


@contextlib.contextmanager
def _preserved() -> Iterator[None]:
    """Restore the default and this context's override on exit, whatever the block did
    (``set_validation``, or a ``validation()`` block entered and never left)."""
    default, override = _DEFAULT, _OVERRIDE.get()
    try:
        yield
    finally:
        set_validation(default)
        _OVERRIDE.set(override)
