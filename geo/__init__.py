"""The gridwork domain: pure functions over shapely and geopandas.

Nothing here touches a database, HTTP or global state, so every rule can be tested on a
hand-drawn polygon and reused by the importer, the API, the maps and the benchmarks alike.
"""
