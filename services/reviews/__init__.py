"""Case reviews opened when ruptures go unrepaired."""
