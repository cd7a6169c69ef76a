"""Feedback in the room: the clinician's brief before a session, the view shared with the client, goal revisions."""
