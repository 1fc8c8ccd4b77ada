"""Benchmarks: each compares a gridwork path with the obvious alternative in the same run."""
