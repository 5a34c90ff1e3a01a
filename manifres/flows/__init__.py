"""Manifold flows: fixed-step integrators (retraction Euler, Runge-Kutta-Munthe-Kaas,
Crouch-Grossman, commutator-free) as functions, and test problems with exact solutions
(:mod:`manifres.flows.problems`). The same schemes are layers as the ``method`` of
:class:`manifres.nn.TangentResidual` and :class:`~manifres.nn.TangentResidualStack`.

Examples
--------
>>> import torch, manifres
>>> from manifres.flows import integrate, problems
>>> p = problems.sphere_small_circle(dtype=torch.float64)
>>> x1 = integrate(p.manifold, p.field, p.x0, p.t1, steps=16, method="rkmk4")
>>> bool((x1 - p.exact(p.t1)).abs().max() < 1e-6)
True
"""

import importlib
from typing import Any

from .evaluation import evaluate_field, is_time_dependent
from .integrate import integrate
from .schemes import METHODS, LieGroupAction, get_stepper, lie_action

# problems (built on manifres.nn fields) and the deprecated layer names (manifres.nn layers)
# load on first use, so that manifres.nn can build on the schemes without an import cycle
_LAZY = {"problems": None, "FlowStep": "layers", "FlowStack": "layers", "RKMKLayer": "layers"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f".{_LAZY[name] or name}", __name__)
    return module if _LAZY[name] is None else getattr(module, name)


__all__ = [
    "integrate",
    "METHODS",
    "get_stepper",
    "LieGroupAction",
    "evaluate_field",
    "is_time_dependent",
    "lie_action",
    "FlowStep",
    "FlowStack",
    "RKMKLayer",
    "problems",
]
