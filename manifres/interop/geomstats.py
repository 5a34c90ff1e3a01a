"""Convert manifres manifolds to geomstats spaces and back (geomstats imported lazily).

geomstats puts the base point second (``metric.exp(tangent_vec, base_point)``); manifres puts it
first. Use these converters at the boundary and keep manifres' order everywhere else.

Importing geomstats has side effects that this module undoes: with ``GEOMSTATS_BACKEND=pytorch``
it sets torch's default dtype to float64, adds a root logging handler and raises the root level;
:func:`import_geomstats` restores all three and checks that the backend is the pytorch one.

Examples
--------
>>> import torch, manifres
>>> from manifres.interop.geomstats import to_geomstats, from_geomstats
>>> space = to_geomstats(manifres.Sphere(2))
>>> type(space).__name__, space.dim
('Hypersphere', 2)
>>> from_geomstats(space)
Sphere(2)
>>> torch.get_default_dtype()
torch.float32
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from types import ModuleType
from typing import Any

import torch

from ..manifolds import Euclidean, Manifold, Sphere

__all__ = ["import_geomstats", "to_geomstats", "from_geomstats"]


def import_geomstats() -> ModuleType:
    """Import ``geomstats`` with the pytorch backend, undoing its global side effects.

    Returns
    -------
    module
        ``geomstats.backend``.

    Raises
    ------
    ImportError
        If geomstats is missing, or was already imported with another backend.
    """
    dtype = torch.get_default_dtype()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    first = "geomstats" not in sys.modules
    if first:
        os.environ.setdefault("GEOMSTATS_BACKEND", "pytorch")
    try:
        gs = importlib.import_module("geomstats.backend")
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "manifres.interop.geomstats needs geomstats (pip install 'geomstats==2.8.*' 'numpy<2.4')"
        ) from err
    finally:
        torch.set_default_dtype(dtype)
        root.setLevel(level)
        root.handlers[:] = handlers
    if not gs.__name__.endswith("pytorch"):
        raise ImportError(
            f"geomstats was imported with the backend {gs.__name__!r}; manifres needs the pytorch "
            "backend: set GEOMSTATS_BACKEND=pytorch before geomstats is first imported"
        )
    return gs


def _space_classes() -> dict[str, Any]:
    import_geomstats()
    from geomstats.geometry.euclidean import Euclidean as GEuclidean
    from geomstats.geometry.hypersphere import Hypersphere
    from geomstats.geometry.special_orthogonal import SpecialOrthogonal as GSO

    return {"Hypersphere": Hypersphere, "SpecialOrthogonal": GSO, "Euclidean": GEuclidean}


def to_geomstats(manifold: Manifold) -> Any:
    """Return the geomstats space matching ``manifold``.

    ``Sphere(n)`` -> ``Hypersphere(dim=n)``, ``SpecialOrthogonal(n)`` ->
    ``SpecialOrthogonal(n, point_type="matrix")``, ``Euclidean(n)`` -> ``Euclidean(dim=n)``.

    Raises
    ------
    TypeError
        For a manifold geomstats has no counterpart for.
    """
    cls = _space_classes()
    if isinstance(manifold, Sphere):
        return cls["Hypersphere"](dim=manifold.n)
    if isinstance(manifold, Euclidean):
        return cls["Euclidean"](dim=manifold.n)
    if type(manifold).__name__ == "SpecialOrthogonal":
        return cls["SpecialOrthogonal"](manifold.n, point_type="matrix")
    raise TypeError(f"no geomstats counterpart for {manifold!r}")


def from_geomstats(space: Any) -> Manifold:
    """Return the manifres manifold matching a geomstats space.

    Raises
    ------
    TypeError
        For a space manifres has no counterpart for (e.g. SO(3) in vector form).
    """
    import manifres

    name = type(space).__name__
    if name == "Hypersphere":
        return Sphere(int(space.dim))
    if name == "Euclidean":
        return Euclidean(int(space.dim))
    if "SpecialOrthogonal" in name and getattr(space, "n", None) is not None:
        if tuple(space.shape) == (space.n, space.n):
            return manifres.SpecialOrthogonal(int(space.n))
    raise TypeError(f"no manifres counterpart for the geomstats space {space!r}")
