"""Keeper's Cloud Functions (Python): frontend callables, connectorSync, Pub/Sub persistence, schedules.

``main.py`` defines every deployed function and stays thin; the logic lives in one module per concern
(``accounts``, ``leases``, ``restore``, ``persist``, ``connection_events``, ``health``, ``cleanup``,
``metrics``) over storage interfaces (``stores``: Firestore and memory implementations) and the vault
interfaces (``ports``). ``errors`` is the package's error tree and its single mapping to the wire.
"""
