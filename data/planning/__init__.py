"""Plans: drafts, units, moves and locks, publishing a new grid version."""
