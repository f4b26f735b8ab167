"""Great Expectations suites (versioned files) and custom expectations."""
