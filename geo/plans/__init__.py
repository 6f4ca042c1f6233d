"""Plans: versions of the district's grids, their persistence, publishing and a planner's edits."""
