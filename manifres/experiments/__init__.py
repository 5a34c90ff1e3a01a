"""Experiments built from the library: ready-made stability studies, an epidemic baseline
for hybrid models, and a forgetting measurement for residual adapters.

They are short, seeded, end-to-end uses of :mod:`manifres.nn` and :mod:`manifres.stability`
that return plain data (the ``manifres study`` command and the gallery print and draw it).
The library's packages never import this one; ``import manifres`` loads it on first use.

* :func:`depth_study`, :func:`weyl_study`, :func:`diffusion_study`,
  :func:`plain_vs_residual_study`, :func:`scale_study` (:data:`STUDIES` by name), each
  returning a :class:`Study` with a JSON payload and a figure;
* :class:`SIR` (a differentiable epidemic model) and :func:`sir_hybrid_experiment`;
* :func:`forgetting_experiment`.

Examples
--------
>>> import manifres
>>> sorted(manifres.experiments.STUDIES)
['depth', 'diffusion', 'plain-vs-residual', 'scale', 'weyl']
"""

from . import forgetting, sir, studies
from .forgetting import *  # noqa: F403
from .sir import *  # noqa: F403
from .studies import *  # noqa: F403

__all__ = studies.__all__ + sir.__all__ + forgetting.__all__
