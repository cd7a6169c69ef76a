"""Practice-wide settings a practice changes in the app (versioned rows; the environment holds deployment config)."""
