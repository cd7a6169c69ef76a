"""survey blueprint."""
