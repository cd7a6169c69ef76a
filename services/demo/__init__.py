"""The synthetic demo practice."""
