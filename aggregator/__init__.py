"""moodstream: aggregator."""
