"""What api/ and the CLI call: one use case, one transaction of the store."""
