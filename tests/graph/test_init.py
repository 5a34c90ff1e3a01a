"""manifres.graph's package surface: lazy torch-geometric, one export list."""

from __future__ import annotations

import subprocess
import sys

import manifres.graph as G
import manifres.graph.diffusion as D


def test_lazy_names_are_the_diffusion_module():
    assert set(G._DIFFUSION) == set(D.__all__)
    assert all(getattr(G, name) is getattr(D, name) for name in D.__all__)
    assert set(D.__all__) <= set(G.__all__) and set(D.__all__) <= set(dir(G))
    assert callable(G.laplacian)  # the function, not the submodule of the same name


def test_the_light_modules_do_not_import_torch_geometric():
    code = (
        "import sys, manifres.graph.datasets, manifres.graph.spectral, manifres.graph.opinion, "
        "manifres.stability; print('torch_geometric' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
