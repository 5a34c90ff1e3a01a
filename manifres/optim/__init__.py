"""Riemannian optimizers for parameters that live on manifres manifolds.

Say which manifold a parameter lives on through its parameter group (the ``"manifold"`` key,
or the optimizer's ``manifold=`` default); groups without one are ordinary Euclidean
parameters and get exactly the update of :class:`torch.optim.SGD` / :class:`torch.optim.Adam`.
The Riemannian gradient is the manifold's
:meth:`~manifres.manifolds.base.Manifold.egrad2rgrad` (the tangent projection for an
embedded metric), and the moments are measured with its ``inner``.

``state_dict()`` is plain data (it loads with ``torch.load(weights_only=True)``): each group's
manifold is stored as a description, and ``load_state_dict`` takes the manifold objects from the
live groups after checking they match. Resuming gives the trajectory of an uninterrupted run.

Examples
--------
>>> import torch, manifres
>>> from manifres.optim import RiemannianSGD
>>> R = torch.nn.Parameter(torch.eye(3))
>>> w = torch.nn.Parameter(torch.zeros(3))
>>> opt = RiemannianSGD(
...     [{"params": [R], "manifold": manifres.SpecialOrthogonal(3)}, {"params": [w]}], lr=0.1
... )
>>> ((R @ torch.tensor([1.0, 0.0, 0.0]) - torch.tensor([0.0, 1.0, 0.0])) ** 2).sum().backward()
>>> opt.step()
>>> bool(manifres.SpecialOrthogonal(3).is_point(R.detach()))
True
"""

from .radam import RiemannianAdam
from .rsgd import RiemannianSGD

__all__ = ["RiemannianSGD", "RiemannianAdam"]
