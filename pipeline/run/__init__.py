"""Running on Beam: options and runners, the migration job, the single-layout run, matching alone."""
