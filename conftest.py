"""Collection rules for the whole checkout (pytest reads this file before tests/conftest.py)."""

# The gallery scripts ship inside the package (manifres/gallery) but are not modules to import:
# importing one runs the example. --doctest-modules over manifres must skip them;
# tests/test_examples.py runs each one through the tour instead.
collect_ignore = ["manifres/gallery"]
