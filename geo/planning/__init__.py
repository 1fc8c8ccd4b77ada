"""Redrawing communities: units, the balanced contiguous partition, plan metrics, the split."""
