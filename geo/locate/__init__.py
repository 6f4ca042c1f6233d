"""Points to building, grid, community and worker: the engine and the index kept per published plan."""
