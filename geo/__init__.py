"""gridmap's domain: buildings, grids, codes, plans, locate and incidents on GeoDataFrames.

Nothing in ``geo`` prints, reads the environment, or knows about the web or HTML.
"""

__version__ = "0.1.0"
