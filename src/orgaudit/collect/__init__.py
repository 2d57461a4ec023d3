"""Collecting an org through the Admin API: the one HTTP client, the request plan, the
journal and the pull's fan-out."""
