"""health blueprint."""
