"""Counting the Firestore RPCs a client makes: how tests and benchmarks hold a flow to its round trips."""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

#: The Firestore API methods a client call ends in; each is one RPC to the server.
RPC_NAMES = ("batch_get_documents", "commit", "run_query", "begin_transaction", "rollback", "batch_write",
             "run_aggregation_query", "list_documents")


class RpcCounter:
    """Wraps the methods of a ``firestore.Client``'s generated API object (``_firestore_api``, which
    every document, batch, query and transaction call goes through) to count them by name."""

    def __init__(self, client: Any) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        api = client._firestore_api
        for name in RPC_NAMES:
            setattr(api, name, self._counting(name, getattr(api, name)))

    def _counting(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return original(*args, **kwargs)

        return call

    def take(self) -> collections.Counter[str]:
        """The calls counted since the last take."""
        taken, self.calls = self.calls, collections.Counter()
        return taken
