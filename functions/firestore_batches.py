"""Firestore batched writes as the functions' stores use them: one limit, one way to delete many documents.

A Firestore batch takes at most 500 writes; keeper's batches stay at :data:`BATCH_WRITES` to leave room.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from google.cloud import firestore

BATCH_WRITES: Final = 400


def delete_in_batches(client: firestore.Client, refs: Sequence[Any]) -> int:
    """Delete the documents at ``refs``, :data:`BATCH_WRITES` per batch; return how many."""
    for start in range(0, len(refs), BATCH_WRITES):
        batch = client.batch()
        for ref in refs[start:start + BATCH_WRITES]:
            batch.delete(ref)
        batch.commit()
    return len(refs)
