r"""Eigenvalue stability studies of residual models.

Why residual connections train where plain deep stacks fail is spectral: a residual block
:math:`y = x + a F(x)` has the Jacobian :math:`I + a J_F`, whose singular values lie in the
Weyl band :math:`[1 - e, 1 + e]`, :math:`e = \|a J_F\|_2`, so a stack of ``L`` blocks amplifies
by at most :math:`(1 + e)^L`, while a plain stack multiplies its Jacobians and its gradients
vanish or explode exponentially.

The functions here take a module (or a function) and inputs, and return plain data: frozen
dataclasses from :mod:`~manifres.stability.results` with a JSON-safe ``to_dict()``. Figures are
drawn separately from that data by :mod:`manifres.stability.plots` (matplotlib, imported on
first use). Ready-made studies built on them (the ``manifres study`` command) live in
:mod:`manifres.experiments`, outside this package.

* :func:`jacobian_spectrum`: eigen/singular values of a block's Jacobian and of ``J - I``,
  dense or matrix-free, restricted to tangent spaces for manifold blocks
  (:meth:`manifres.Manifold.tangent_frame`).
* :func:`weyl_band`: the band :math:`[1 - e, 1 + e]` against the measured singular values.
* :func:`depth_profile`, :func:`lyapunov_exponents`: a stack layer by layer.
* :func:`scale_sweep`, :func:`compare_plain_residual`: the residual scale and the depth.
* :func:`diffusion_stability`: the graph step :math:`I - h L`.
* :func:`gain_margin`: the feedback gains :math:`k` with :math:`\rho(J - kBK) < 1`.
* :func:`patch_interaction`, :func:`patch_stack`: patches :math:`x \leftarrow x + p_i(x)`
  split into first order and interaction.
* :func:`saved_activation_bytes`: the memory a forward pass saves for the backward pass.

Examples
--------
>>> import torch
>>> from manifres.stability import jacobian_spectrum
>>> w = 0.1 * torch.eye(3, dtype=torch.float64)
>>> jacobian_spectrum(lambda x: x + x @ w, torch.ones(3, dtype=torch.float64)).singular_values
tensor([1.1000, 1.1000, 1.1000], dtype=torch.float64)
"""

from . import plots, results
from .depth import depth_profile, is_residual_block, is_residual_step, lyapunov_exponents, stack_layers
from .diffusion import diffusion_stability
from .frames import tangent_basis
from .gain import gain_margin
from .jacobian import DENSE_LIMIT, jacobian_spectrum
from .memory import saved_activation_bytes
from .patches import patch_interaction, patch_stack
from .results import (
    DepthProfile,
    DiffusionStability,
    GainMargin,
    JacobianSpectrum,
    LyapunovSpectrum,
    PatchInteraction,
    PlainResidualComparison,
    ScaleSweep,
    WeylBand,
)
from .sweep import compare_plain_residual, scale_sweep
from .weyl import weyl_band

__all__ = [
    "jacobian_spectrum",
    "tangent_basis",
    "weyl_band",
    "depth_profile",
    "lyapunov_exponents",
    "stack_layers",
    "is_residual_step",
    "is_residual_block",
    "scale_sweep",
    "compare_plain_residual",
    "diffusion_stability",
    "gain_margin",
    "patch_interaction",
    "patch_stack",
    "saved_activation_bytes",
    "DENSE_LIMIT",
    "JacobianSpectrum",
    "WeylBand",
    "DepthProfile",
    "LyapunovSpectrum",
    "ScaleSweep",
    "PlainResidualComparison",
    "DiffusionStability",
    "GainMargin",
    "PatchInteraction",
    "plots",
    "results",
]
