"""moodstream: customer satisfaction from the facial emotions that store cameras see.

The stage packages (``moodstream.ingest``, ``detector``, ``classifier``, ``aggregator``) and the contracts
(``moodstream.schemas``) live in top-level folders of the repository and are installed under this package.
"""
