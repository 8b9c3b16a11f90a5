"""Quality scoring: the guide's prompt and dimensions, response parsing, scorers, cache, blend."""
