"""The people who answer for grids: the roster of grid workers (and, later, households)."""
