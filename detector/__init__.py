"""moodstream: detector."""
