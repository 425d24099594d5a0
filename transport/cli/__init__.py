"""``python -m transport``'s commands for a user's own services: ``run``, ``list`` and ``call``."""
