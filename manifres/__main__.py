"""``python -m manifres``: the ``manifres`` command (see :mod:`manifres.cli`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
