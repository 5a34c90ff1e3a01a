"""Bridges to geomstats, pymanopt and geoopt. Each is imported lazily, only when its bridge is
used (``import manifres`` imports none of them).

* :mod:`manifres.interop.geomstats`: ``to_geomstats`` / ``from_geomstats`` and a safe importer
  that keeps torch's default dtype and the root logger as they were.
* :mod:`manifres.interop.pymanopt`: ``to_pymanopt`` (a pymanopt manifold backed by manifres'
  geometry, usable by every pymanopt solver) / ``from_pymanopt``.
* :mod:`manifres.interop.geoopt`: ``to_geoopt`` (a geoopt manifold computed by manifres, for
  ``geoopt.ManifoldParameter`` and geoopt's optimizers) / ``from_geoopt``; manifres' optimizers
  also take ``geoopt.ManifoldParameter``.
"""

__all__ = ["geomstats", "pymanopt", "geoopt"]
