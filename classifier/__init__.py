"""moodstream: classifier."""
