"""The partition search behind :mod:`geo.planning.split`: units cut into grids in the band."""
