"""Stored signals and the alerts clinicians act on."""
