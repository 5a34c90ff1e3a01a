"""Named errors raised by manifres.

Every error derives from :class:`ManifresError` and from the builtin that a user would catch
anyway (``ValueError`` for values and shapes, ``TypeError`` for dtypes), so ``except ValueError``
keeps working.

Examples
--------
>>> import torch, manifres
>>> try:
...     manifres.Sphere(2).proj(torch.zeros(4), torch.zeros(4))
... except manifres.errors.ShapeError as e:
...     print(type(e).__name__)
ShapeError
"""

from __future__ import annotations

__all__ = [
    "ManifresError",
    "ShapeError",
    "DTypeError",
    "DeviceError",
    "ManifoldError",
    "CutLocusError",
    "UnknownChoiceError",
    "ParameterError",
    "GraphError",
    "StabilityError",
]


class ManifresError(Exception):
    """Base class of every error that manifres raises on purpose."""


class ShapeError(ManifresError, ValueError):
    """A tensor has the wrong trailing (manifold) shape, or batch shapes do not broadcast."""


class DTypeError(ManifresError, TypeError):
    """A tensor has an unsupported dtype (integer, half) or two inputs have different dtypes."""


class DeviceError(ManifresError, ValueError):
    """Inputs live on different devices."""


class ManifoldError(ManifresError, ValueError):
    """A point is off the manifold, a vector is not tangent, or an input is not finite."""


class CutLocusError(ManifoldError):
    """The logarithm (or transport) is asked at the cut locus, where it is not unique.

    Raised for antipodal points on the sphere and, on SO(n), for rotations whose log is not
    unique (two or more planes at angle pi).
    """


class UnknownChoiceError(ManifresError, ValueError):
    """A choice given by name (retraction, method, normalization, ...) is not known.

    The message lists the valid names.
    """


class ParameterError(ManifresError, ValueError):
    """An argument's value is invalid: a non-finite step, a non-positive depth or step count."""


class GraphError(ManifresError, ValueError):
    """A graph is malformed: bad ``edge_index``, negative or non-finite weights, node counts."""


class StabilityError(ManifresError, ValueError):
    """A step size lies outside the range that a stability certificate allows."""
