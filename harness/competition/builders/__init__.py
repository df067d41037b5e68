"""The data builders: ``tables`` and ``files`` (an organizer's own files, ``tables.py``), the bundled examples
(``digits``, ``diabetes``), and what they share (``keyed.py``: the secret, keyed ids, order and split, the marker)."""
