"""Read and write queries, one module per aggregate; the only place that writes SQL."""
