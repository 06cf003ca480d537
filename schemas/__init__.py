"""moodstream: schemas."""
