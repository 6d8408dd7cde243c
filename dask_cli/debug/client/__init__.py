"""Runs in the user's terminal. Never imports the service side."""
