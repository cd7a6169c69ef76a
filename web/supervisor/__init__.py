"""supervisor blueprint."""
