"""Coverage of grids by facilities along the road network, from the store."""
