"""The `moodstream` command line: one module per command area, registered in app.py."""
