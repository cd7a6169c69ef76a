"""clinician blueprint."""
