"""A separate process that restores an auth state from its JSON file, logs in once, and saves it back.

Usage: python -m tests.connector.engine.login_child STATE_JSON WS_URL ROOT_KEY_B64
Prints one line: ``opened <jid>`` or ``closed <reason>``; exit status 0 only when the login opened.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from connector.engine.driver import EngineConfig, EngineSession
from connector.protocol.client import ClientConfig
from connector.protocol.events import Closed, Event, Opened, PreKeysUploaded
from shared import bufferjson
from shared.authstate import AuthState
from shared.authstore import MemoryAuthStore


async def _uploaded(events: AsyncIterator[Event]) -> None:
    async for event in events:
        if isinstance(event, PreKeysUploaded | Closed):
            return


async def main(state_path: Path, url: str, root_key: bytes) -> int:
    store = MemoryAuthStore(AuthState.from_json(bufferjson.revive(state_path.read_text())))
    config = EngineConfig(url=url, connect_timeout_s=5,
                          client=ClientConfig(root_public_key=root_key, initial_pre_key_count=15))
    session = EngineSession(store, config)
    events = session.events()
    outcome = "closed never-opened"
    async for event in events:
        if isinstance(event, Opened):
            outcome = f"opened {event.jid}"
            break
        if isinstance(event, Closed):
            outcome = f"closed {event.info.reason}"
            break
    if outcome.startswith("opened"):
        # Let the after-login round finish (a pre-key upload when the server has none), then leave.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_uploaded(events), 2.0)
        await session.close()
    state_path.write_text(bufferjson.dumps(store.snapshot().to_json()))
    print(outcome, flush=True)
    return 0 if outcome.startswith("opened") else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]), sys.argv[2], base64.b64decode(sys.argv[3]))))
