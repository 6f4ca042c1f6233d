"""Incidents: the national event catalogue, feed import, assignment to grids, the case loop
and its deadlines, and per-grid statistics (issue 6).

One module per concept: :mod:`.catalogue` (categories and matching), :mod:`.feeds` (reading
12345 / 数字城管 / 311 feeds), :mod:`.assign` (grid, community, worker), :mod:`.workflow`
(statuses, transitions, deadlines), :mod:`.stats` (rates, hotspots, trends), :mod:`.cases`
(the rows of the incidents layer), :mod:`.records` (that layer and the events in the project
file), :mod:`.intake` (one posted case, the lean path), :mod:`.shift` (GCJ-02/BD-09 feeds).
The use cases that combine them are :mod:`geo.usecases.incidents`.
"""
