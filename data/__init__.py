"""Storage and data: models, migrations, queries, the local PostGIS cluster, importers."""
