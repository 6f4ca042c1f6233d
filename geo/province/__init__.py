"""A province at once: many streets, each independent work, spread over a Dask cluster (issue #19)."""
