"""The driver carries out actions for other sockets without letting their failures hurt the caller."""

from __future__ import annotations

from connector.protocol.binary import Node
from simulator.core import Close, Send
from simulator.faults import MalformedVariant
from simulator.server import SimulatorServer


class FakeSocket:
    def __init__(self, *, broken: bool) -> None:
        self.broken = broken
        self.sent: list[Node] = []
        self.aborted = False

    async def send_node(self, node: Node) -> None:
        if self.broken:
            raise ConnectionResetError("Cannot write to closing transport")
        self.sent.append(node)

    async def send_malformed(self, variant: MalformedVariant) -> None:
        await self.send_node(Node("malformed"))

    def abort(self) -> None:
        self.aborted = True

    def request_close(self) -> None:
        self.aborted = True


async def test_a_dead_socket_does_not_fail_the_actions_for_the_others() -> None:
    server = SimulatorServer()
    dead, alive = FakeSocket(broken=True), FakeSocket(broken=False)
    server._sockets.update({1: dead, 2: alive})  # type: ignore[dict-item]
    replaced = Node("stream:error", {}, [Node("conflict", {"type": "replaced"})])
    await server.run_actions([Send(1, replaced), Close(1), Send(2, Node("success"))])
    assert dead.aborted
    assert [n.tag for n in alive.sent] == ["success"]
    assert not alive.aborted
