"""The project file: the store (one transaction per write) and the GeoPackage codec.

Knows tables and layers, not grids or cases.
"""
