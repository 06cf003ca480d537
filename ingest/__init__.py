"""moodstream: ingest."""
