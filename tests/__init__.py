"""Tests mirror the packages: tests/geo, tests/maps, ..."""
