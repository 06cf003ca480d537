"""moodstream: moodstream."""
