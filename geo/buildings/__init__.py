"""Buildings as offices bring them: reading any GDAL source, repairing, finding each one's community.

Pure functions; :mod:`geo.usecases.district` stores what they return.
"""
