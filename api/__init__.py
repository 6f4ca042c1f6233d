"""gridmap's thin outer layers: the FastAPI service and the ``gridmap`` CLI."""
