"""The steps of a run after decoding: mapping, matching, reconciliation, gates, publishing and the manifest."""
