"""The thin outer layer: HTTP (FastAPI) and the command line. Validate, call, shape."""
