"""Calls with real media (pjsua2) for the audio checks."""
