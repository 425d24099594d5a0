"""The seed services, declared, served and called over the JSON transport.

One package per seed in ``../shared/seeds``, each with its declaration
(``protocol``), a reference server with real behaviour (``server``), typed
client helpers (``client``) and a command line::

    python -m transport.examples.migrator serve --port 0 --state DIR --ingest SRC:DEST
    python -m transport.examples.runner serve --port 0
    python -m transport.examples.scaleout serve --port 0
    python -m transport.examples.jina serve --port 0

``serve`` prints ``listening on 127.0.0.1:<port>`` as its first line; ``demo``
exercises a server with the typed client (its own, or ``--target HOST:PORT``).
"""
