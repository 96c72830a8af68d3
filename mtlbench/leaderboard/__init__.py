"""Leaderboards: boards as plain JSON files (docs/leaderboards.md), the protocol an entry must
keep to be added, the summaries across seeds, and their markdown and HTML renderings."""
