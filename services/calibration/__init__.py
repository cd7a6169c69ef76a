"""Calibration from the practice's own data (CLINICAL.md sections 4 and 6): the expected-recovery fits."""
