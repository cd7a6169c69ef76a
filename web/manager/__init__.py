"""manager blueprint."""
