"""The district itself: validation of imported rows, topology, tiling, household estimates."""
