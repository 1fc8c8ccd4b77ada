"""Tests that keep the benchmarks runnable: their load paths at a tiny scale."""
