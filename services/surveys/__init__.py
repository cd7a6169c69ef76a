"""Protocols, invitations with their tokens, and submitted administrations."""
