"""The functional tier touches no network either: the use cases run on the fakes of tests/fakes.py."""

from tests.unit.conftest import _no_network  # noqa: F401  (the unit tier's autouse socket guard)
