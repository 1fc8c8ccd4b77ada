"""Tests of geo/: pure geometry, no database."""
