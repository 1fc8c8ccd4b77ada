"""The hierarchy and its grids: reads for pages and maps, grid edits, the topology checks."""
