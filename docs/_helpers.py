"""Helpers of the Sphinx configuration (``conf.py`` references them by name)."""

from __future__ import annotations

import inspect
import os
import re

__all__ = ["reset_torch", "escape_shape_stars", "skip_foreign_members", "unmanaged_figure_scraper", "setup"]

# A star that unpacks a shape inside a type, as in ``Tensor, shape (..., *point_shape)`` or
# ``(N, *F)``: reStructuredText would read it as the start of an emphasis.
_SHAPE_STAR = re.compile(r"(?<=[(\s,\[])\*(?=[A-Za-z_]\w*\s*[,)\]])")
_LITERAL = re.compile(r"(``.*?``|`[^`]*`)")
# ``**kwargs`` in prose would open a strong emphasis.
_KWARGS_STARS = re.compile(r"(?<![\\*`\w])\*\*(?=[A-Za-z_]\w*(?![\w*]))")
# "(a) first ...; (b) second ..." at the start of lines reads as an enumerated list whose
# items are not indented: escape the parenthesis, the text stays as written.
_LETTER_ENUM = re.compile(r"^(\s*)\((?=[a-z]\) )")
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__import__("manifres").__file__))


def reset_torch(gallery_conf: dict, fname: str) -> None:
    """Give every gallery example torch's defaults (float32, grad mode on, seed 0) and one
    intra-op thread, as ``manifres tour`` does: the examples' tensors are small."""
    import torch

    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    torch.set_grad_enabled(True)
    torch.manual_seed(0)


def unmanaged_figure_scraper(block, block_vars: dict, gallery_conf: dict, **kwargs) -> str:
    """sphinx-gallery scraper for figures built without pyplot.

    :mod:`manifres.stability.plots` returns ``matplotlib.figure.Figure`` objects that pyplot
    does not manage, so the matplotlib scraper cannot see them; this one saves every such
    figure held in the example's global variables, once, after the block that created it.
    """
    from matplotlib.figure import Figure
    from sphinx_gallery.scrapers import figure_rst

    seen = block_vars.setdefault("manifres_seen_figures", set())
    paths = []
    for value in list(block_vars["example_globals"].values()):
        pyplot_figure = hasattr(value, "number")  # numbered by pyplot, even once closed
        if isinstance(value, Figure) and not pyplot_figure and id(value) not in seen:
            seen.add(id(value))
            path = next(block_vars["image_path_iterator"])
            value.savefig(path)
            paths.append(path)
    return figure_rst(paths, gallery_conf["src_dir"])


def _get_sg_image_scraper():
    """Entry point that lets ``conf.py`` name this module in ``image_scrapers``."""
    return unmanaged_figure_scraper


def _escape(line: str) -> str:
    if line.lstrip().startswith((">>>", "...")):
        return line
    line = _LETTER_ENUM.sub(r"\1\\(", line)
    parts = _LITERAL.split(line)
    # even indices are outside backticks
    return "".join(
        _KWARGS_STARS.sub(r"\\*\\*", _SHAPE_STAR.sub(r"\\*", p)) if i % 2 == 0 else p
        for i, p in enumerate(parts)
    )


def escape_shape_stars(app, what, name, obj, options, lines: list[str]) -> None:
    """``autodoc-process-docstring`` hook: escape what reStructuredText would misread.

    numpy-style types such as ``x : Tensor, shape (..., *point_shape)`` are plain text; this
    turns ``*point_shape`` into ``\\*point_shape``, ``**kwargs`` into ``\\*\\*kwargs``, and a
    line that starts with ``(a)`` into ``\\(a)`` (outside literals and doctest lines), before
    numpydoc parses the docstring. The rendered text is unchanged.
    """
    lines[:] = [_escape(line) for line in lines]


def skip_foreign_members(app, what, name, obj, skip, options) -> bool | None:
    """``autodoc-skip-member`` hook: skip class members whose code lives outside manifres.

    torch-geometric generates a ``propagate`` method for every ``MessagePassing`` subclass
    (from a template, in a temporary file) and attaches it to the class; it is not manifres
    API and its docstring is not written for Sphinx.
    """
    if what != "class" or not callable(obj):
        return None
    try:
        source = inspect.getsourcefile(obj)
    except TypeError:  # builtins
        return None
    if source and not os.path.abspath(source).startswith(_PACKAGE_DIR):
        return True
    return None


def setup(app) -> dict:
    app.connect("autodoc-process-docstring", escape_shape_stars, priority=100)
    app.connect("autodoc-skip-member", skip_foreign_members)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
