"""Sphinx configuration of the manifres documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors).

Environment variables
---------------------
MANIFRES_DOCS_QUICK=1
    Run the gallery examples at their quick (CI) size (sets ``MANIFRES_QUICK=1``).
MANIFRES_DOCS_INTERSPHINX=1
    Link to the Python, NumPy, PyTorch and torch-geometric docs (needs the network).
MANIFRES_DOCS_GALLERY=0
    Do not run the examples (the gallery pages are built without their outputs).
"""

from __future__ import annotations

import os
import sys
import warnings
from importlib.metadata import version as _version

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for _helpers.py and _mathml.py

if os.environ.get("MANIFRES_DOCS_QUICK") == "1":
    os.environ["MANIFRES_QUICK"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
# Warnings of the libraries the examples import (not of manifres) that are not ours to fix.
warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=DeprecationWarning)
warnings.filterwarnings("ignore", message="Sparse .* (invariant checks|support)", category=UserWarning)

project = "manifres"
author = "manifres developers"
copyright = "manifres developers"
release = _version("manifres")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "_mathml",  # formulas as MathML at build time: they render offline, with no CDN
    "sphinx.ext.viewcode",
    "sphinx.ext.napoleon",
    "sphinx_gallery.gen_gallery",
    "_helpers",  # docstring fixes (stars of shapes in types), skips generated members
]
if os.environ.get("MANIFRES_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "torch": ("https://pytorch.org/docs/stable", None),
        "torch_geometric": ("https://pytorch-geometric.readthedocs.io/en/latest", None),
        "matplotlib": ("https://matplotlib.org/stable", None),
    }

templates_path = ["_templates"]
# sg_execution_times: sphinx-gallery's timing page, whose table loads scripts from CDNs.
# _generated: tables that pages include (benchmarks/accuracy_atlas.py writes them), not pages.
exclude_patterns = [
    "_build",
    "_generated",
    "generated/backreferences/*",
    "sg_execution_times.rst",
    "**/sg_execution_times.rst",
]
default_role = "py:obj"
nitpicky = False

# -- autodoc / autosummary / napoleon ---------------------------------------------------------
autosummary_generate = True
autosummary_ignore_module_all = False  # document exactly what each module's __all__ exports
autosummary_imported_members = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # the numpy docstrings carry the types, with shapes
autodoc_inherit_docstrings = False  # no torch or torch-geometric text on undocumented overrides
# napoleon rather than numpydoc: numpydoc drops sections it does not know (the "Shapes" of
# the layers), napoleon renders them through napoleon_custom_sections.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_ivar = True  # Attributes as fields: no second description of dataclass fields
napoleon_use_rtype = False
napoleon_custom_sections = ["Shapes", "Conventions", "Public API", "Calling convention"]

# -- sphinx-gallery ---------------------------------------------------------------------------
# Every example starts from torch's defaults on one thread (_helpers.reset_torch, as the tour).
sphinx_gallery_conf = {
    "examples_dirs": "../manifres/gallery",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "reset_modules": ("matplotlib", "_helpers.reset_torch"),
    "plot_gallery": os.environ.get("MANIFRES_DOCS_GALLERY", "1") != "0",
    "doc_module": ("manifres",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"manifres": None},
    "prefer_full_module": set(),
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
    "download_all_examples": False,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib", "_helpers"),  # _helpers: figures built without pyplot
}

# -- HTML -------------------------------------------------------------------------------------
html_math_renderer = "mathml"
html_static_path = ["_static"]
html_css_files = ["mathml.css"]
html_theme = "pydata_sphinx_theme"
html_title = f"manifres {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {
    "**": ["sidebar-nav-bs"],
    "index": [],
    "getting_started": [],
    "conventions": [],
    "numerics": [],
}
