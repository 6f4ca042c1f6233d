"""Folium rendering of gridmap data: GeoDataFrames in, maps and HTML out."""
