"""frontdesk blueprint."""
