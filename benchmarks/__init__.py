"""`make bench`: speed, memory and call-count figures, written as JSON to .bench/ and printed as a table."""
