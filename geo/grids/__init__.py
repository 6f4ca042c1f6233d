"""Grids: the partition engine (adjacency, cut, regroup), cells and grid polygons, standard codes.

Pure functions on GeoDataFrames; nothing here opens the project file.
"""
