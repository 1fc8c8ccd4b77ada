"""Batch work (planning, coverage, reassignment) run serially or as dask.distributed tasks."""
