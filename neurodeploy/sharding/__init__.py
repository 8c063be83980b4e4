"""Runs sharded over samples on a Dask cluster (a local one, or an existing scheduler)."""
