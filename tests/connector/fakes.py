"""In-memory doubles for the connector's interfaces."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from connector.errors import PublishError


@dataclass(frozen=True)
class Published:
    topic: str
    data: bytes
    attributes: Mapping[str, str]
    ordering_key: str


class MemoryTransport:
    """A MessageTransport that can be switched down to simulate an outage."""

    def __init__(self, latency_s: float = 0.0) -> None:
        self.published: list[Published] = []
        self.down = False
        self.attempts = 0
        self.latency_s = latency_s

    async def publish(self, topic: str, data: bytes, attributes: Mapping[str, str], ordering_key: str) -> str:
        self.attempts += 1
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if self.down:
            raise PublishError("transport is down")
        self.published.append(Published(topic, data, dict(attributes), ordering_key))
        return str(len(self.published))

    async def close(self) -> None:
        pass

    def on(self, topic: str) -> list[Published]:
        return [p for p in self.published if p.topic == topic]
