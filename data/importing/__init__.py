"""Reading files (GeoPackage, GeoJSON, CSV, OSM PBF) and loading them in one transaction."""
