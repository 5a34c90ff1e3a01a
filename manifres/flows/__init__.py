"""Manifold flows: fixed-step integrators (retraction Euler, Runge-Kutta-Munthe-Kaas,
Crouch-Grossman, commutator-free) as functions and as layers, and test problems with exact
solutions (:mod:`manifres.flows.problems`).

Examples
--------
>>> import torch, manifres
>>> from manifres.flows import integrate, problems
>>> p = problems.sphere_small_circle(dtype=torch.float64)
>>> x1 = integrate(p.manifold, p.field, p.x0, p.t1, steps=16, method="rkmk4")
>>> bool((x1 - p.exact(p.t1)).abs().max() < 1e-6)
True
"""

from . import problems
from .integrate import integrate
from .layers import FlowStack, FlowStep, RKMKLayer
from .schemes import METHODS, LieGroupAction, get_stepper, lie_action

__all__ = [
    "integrate",
    "METHODS",
    "get_stepper",
    "lie_action",
    "LieGroupAction",
    "FlowStep",
    "FlowStack",
    "RKMKLayer",
    "problems",
]
