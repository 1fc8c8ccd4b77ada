"""Tests of the storage and data layer: readers, importers, queries."""
