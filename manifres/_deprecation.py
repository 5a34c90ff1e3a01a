"""Deprecated names kept for one release: renamed keyword arguments and attributes.

Every alias warns with a :class:`DeprecationWarning` that names the new spelling; the
CHANGELOG lists each rename.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["renamed_kwargs", "deprecated_alias", "warn_renamed"]

_UNSET = object()


def warn_renamed(owner: str, old: str, new: str, stacklevel: int = 3) -> None:
    """Warn that ``owner``'s ``old`` is now called ``new``."""
    warnings.warn(
        f"{owner}: {old!r} is deprecated and will be removed in manifres 0.3; use {new!r}",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def renamed_kwargs(owner: str, kwargs: dict[str, Any], renames: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """Resolve deprecated keyword arguments.

    Parameters
    ----------
    owner : str
        The class or function the user called (for the messages).
    kwargs : dict
        The deprecated keywords the caller received (``**old`` of its signature).
    renames : dict
        ``old name -> (new name, value of the new argument as passed)``; the value is
        :data:`UNSET` when the caller did not pass the new name.

    Returns
    -------
    dict
        ``new name -> value`` for every deprecated keyword that was used.

    Raises
    ------
    TypeError
        For an unknown keyword, or when both the old and the new name are given.
    """
    out: dict[str, Any] = {}
    for old, value in kwargs.items():
        if old not in renames:
            raise TypeError(f"{owner}() got an unexpected keyword argument {old!r}")
        new, given = renames[old]
        if given is not _UNSET:
            raise TypeError(f"{owner}() got both {old!r} (deprecated) and {new!r}; pass {new!r} only")
        warn_renamed(owner, old, new, stacklevel=4)
        out[new] = value
    return out


#: Marker for "argument not passed" in :func:`renamed_kwargs`.
UNSET = _UNSET


def deprecated_alias(new: str, old: str) -> property:
    """A property ``old`` that reads and writes attribute ``new`` with a DeprecationWarning."""

    def fget(self: Any) -> Any:
        warn_renamed(type(self).__name__, old, new)
        return getattr(self, new)

    def fset(self: Any, value: Any) -> None:
        warn_renamed(type(self).__name__, old, new)
        setattr(self, new, value)

    return property(fget, fset, doc=f"Deprecated alias of :attr:`{new}`.")
