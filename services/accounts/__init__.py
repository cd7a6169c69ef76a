"""Users, teams, roles, passwords, login sessions and API tokens."""
