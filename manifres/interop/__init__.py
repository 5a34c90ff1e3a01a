"""Bridges to geomstats and pymanopt. Both are imported lazily, only when a bridge is used.

* :mod:`manifres.interop.geomstats`: ``to_geomstats`` / ``from_geomstats`` and a safe importer
  that keeps torch's default dtype and the root logger as they were.
* :mod:`manifres.interop.pymanopt`: ``to_pymanopt`` (a pymanopt manifold backed by manifres'
  geometry, usable by every pymanopt solver) / ``from_pymanopt``.
"""

__all__ = ["geomstats", "pymanopt"]
