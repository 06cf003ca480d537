"""The runtime: settings, Redis/PostgreSQL connections, worker loop, stage adapters and process wiring."""
