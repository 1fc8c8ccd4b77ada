"""Assignment of households, facilities and incidents to grids: SQL and its use cases."""
