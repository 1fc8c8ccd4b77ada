"""Which grid covers a point: the in-process covering index (shapely STRtree + cell grid)."""
