"""WhatsApp's binary XML: ``Node`` values, JIDs, and the codec between them and bytes.

Wire format (whatsmeow ``binary/encoder.go``, Baileys ``src/WABinary``): a node is a list whose size is
``1 + 2 * attributes + (1 if content)``; then the tag, the attribute key/value strings, then the content
(a list of nodes or a byte string). Strings are sent as tokens when listed in the connection's dictionary
(``tokens``: version 3 by default, version 2 for clients that announce it), else
packed as nibbles (digits, ``-``, ``.``) or hex (``0-9A-F``), else as a JID when they contain ``@``,
else raw. A serialized stanza starts with a flags byte; flag 0x02 means the rest is zlib-compressed.

JID strings follow Baileys: ``user[_agent][:device]@server``; a server-only JID is ``@server``
(``S_WHATSAPP_NET``), so that it is encoded as a JID pair and not as the bare token.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from connector.protocol import tokens as t
from connector.protocol.errors import JidError, NodeCodecError

USER_SERVER: Final = "s.whatsapp.net"
LID_SERVER: Final = "lid"
GROUP_SERVER: Final = "g.us"
BROADCAST_SERVER: Final = "broadcast"
HOSTED_SERVER: Final = "hosted"
HOSTED_LID_SERVER: Final = "hosted.lid"
MESSENGER_SERVER: Final = "msgr"
INTEROP_SERVER: Final = "interop"
S_WHATSAPP_NET: Final = "@s.whatsapp.net"
"""The server JID stanzas are addressed to."""

FLAG_COMPRESSED: Final = 0x02
MAX_INFLATED_SIZE: Final = 32 << 20
"""Refuse zlib payloads that inflate beyond this (guards against compression bombs)."""

# AD-JID domain byte (whatsmeow ``ActualAgent``): which server a device JID lives on.
_DOMAIN_BY_SERVER: Final = {USER_SERVER: 0, LID_SERVER: 1, HOSTED_SERVER: 128, HOSTED_LID_SERVER: 129}
_SERVER_BY_DOMAIN: Final = {1: LID_SERVER, 128: HOSTED_SERVER, 129: HOSTED_LID_SERVER}


@dataclass(frozen=True, slots=True)
class Jid:
    """A WhatsApp address. ``device`` is set for device (AD) JIDs; ``agent`` is rarely non-zero."""

    user: str
    server: str
    device: int | None = None
    agent: int = 0
    integrator: int = 0

    @classmethod
    def parse(cls, text: str) -> Jid:
        """Parse ``user[_agent][:device]@server`` or ``@server``. Raises ``JidError``."""
        user_part, at, server = text.rpartition("@")
        if not at or not server:
            raise JidError(f"not a JID: {text!r}")
        device: int | None = None
        agent = 0
        if ":" in user_part:
            user_part, _, device_text = user_part.partition(":")
            if not device_text.isdigit() or int(device_text) > 0xFFFF:
                raise JidError(f"bad device in JID {text!r}")
            device = int(device_text)
        if "_" in user_part and server not in (GROUP_SERVER, BROADCAST_SERVER):
            user_part, _, agent_text = user_part.partition("_")
            if not agent_text.isdigit() or int(agent_text) > 0xFF:
                raise JidError(f"bad agent in JID {text!r}")
            agent = int(agent_text)
        return cls(user=user_part, server=server, device=device, agent=agent)

    @classmethod
    def user_jid(cls, user: str, device: int | None = None, server: str = USER_SERVER) -> Jid:
        return cls(user=user, server=server, device=device)

    def __str__(self) -> str:
        agent = f"_{self.agent}" if self.agent else ""
        device = f":{self.device}" if self.device else ""
        return f"{self.user}{agent}{device}@{self.server}"

    def without_device(self) -> Jid:
        """The user's JID (no agent, no device)."""
        return Jid(user=self.user, server=self.server)


@dataclass(slots=True)
class Node:
    """One binary XML element. Attribute values are strings; content is child nodes, bytes, or absent."""

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    content: list[Node] | bytes | None = None

    def children(self, tag: str | None = None) -> list[Node]:
        """Child nodes (all, or those with ``tag``); empty when the content is bytes or absent."""
        if not isinstance(self.content, list):
            return []
        return [child for child in self.content if tag is None or child.tag == tag]

    def child(self, *path: str) -> Node | None:
        """The first descendant following ``path`` (one tag per level), or ``None``."""
        node: Node | None = self
        for tag in path:
            if node is None:
                return None
            node = next(iter(node.children(tag)), None)
        return node

    def child_bytes(self, *path: str) -> bytes | None:
        node = self.child(*path)
        return node.content if node is not None and isinstance(node.content, bytes) else None

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children():
            yield from child.walk()

    def __repr__(self) -> str:  # content may be key material or message text: show only its shape
        if isinstance(self.content, list):
            inner = f"[{', '.join(repr(c) for c in self.content)}]"
        elif isinstance(self.content, bytes):
            inner = f"<{len(self.content)} bytes>"
        else:
            inner = "None"
        return f"Node({self.tag!r}, {self.attrs!r}, {inner})"


# ---------------------------------------------------------------------------------------------- encode


def encode_node(node: Node, *, compress: bool = False, dict_version: int = t.DICT_VERSION) -> bytes:
    """Serialize ``node`` with its leading flags byte (zlib-compressed when ``compress``), in the token
    dictionary ``dict_version``."""
    writer = _Writer(t.dictionary(dict_version))
    writer.write_node(node)
    body = bytes(writer.out)
    if compress:
        return bytes([FLAG_COMPRESSED]) + zlib.compress(body)
    return b"\x00" + body


class _Writer:
    __slots__ = ("double_index", "out", "single_index")

    def __init__(self, dictionary: t.Dictionary) -> None:
        self.out = bytearray()
        self.single_index = dictionary.single_index
        self.double_index = dictionary.double_index

    def write_node(self, node: Node) -> None:
        if not node.tag:
            raise NodeCodecError("node tag must not be empty")
        attrs = [(k, v) for k, v in node.attrs.items() if v is not None] if node.attrs else []
        content = node.content
        self.write_list_start(1 + 2 * len(attrs) + (0 if content is None else 1))
        self.write_string(node.tag)
        for key, value in attrs:
            if not isinstance(value, str):
                raise NodeCodecError(f"attribute {key!r} must be a string, got {type(value).__name__}")
            self.write_string(key)
            self.write_string(value)
        if type(content) is bytes:
            self.write_bytes(content)
        elif isinstance(content, list):
            self.write_list_start(len(content))
            for child in content:
                self.write_node(child)
        elif isinstance(content, bytes | bytearray | memoryview):
            self.write_bytes(bytes(content))
        elif content is not None:
            raise NodeCodecError(f"node content must be nodes or bytes, got {type(content).__name__}")

    def write_list_start(self, size: int) -> None:
        if size == 0:
            self.out.append(t.LIST_EMPTY)
        elif size < 256:
            self.out.append(t.LIST_8)
            self.out.append(size)
        elif size < 65536:
            self.out.append(t.LIST_16)
            self.out += size.to_bytes(2, "big")
        else:
            raise NodeCodecError(f"list too long: {size}")

    def write_bytes(self, data: bytes) -> None:
        length = len(data)
        if length < 256:
            self.out.append(t.BINARY_8)
            self.out.append(length)
        elif length < (1 << 20):
            self.out.append(t.BINARY_20)
            self.out += length.to_bytes(3, "big")
        elif length < (1 << 31):
            self.out.append(t.BINARY_32)
            self.out += length.to_bytes(4, "big")
        else:
            raise NodeCodecError(f"byte string too long: {length}")
        self.out += data

    def write_string(self, value: str) -> None:
        index = self.single_index.get(value)
        if index is not None:
            self.out.append(index)
            return
        double = self.double_index.get(value)
        if double is not None:
            self.out += bytes((t.DICTIONARY_0 + double[0], double[1]))
            return
        if value and len(value) <= t.PACKED_MAX:
            if _is_nibble(value):
                self.write_packed(value, t.NIBBLE_8)
                return
            if _is_hex(value):
                self.write_packed(value, t.HEX_8)
                return
        if "@" in value:
            try:
                jid = Jid.parse(value)
            except JidError:
                jid = None
            # Only canonical JIDs are sent as JIDs, so that decoding gives back the same string.
            if jid is not None and str(jid) == value and _jid_encodable(jid):
                self.write_jid(jid)
                return
        self.write_bytes(value.encode("utf-8", "surrogateescape"))

    def write_jid(self, jid: Jid) -> None:
        if jid.device is not None and jid.server in _DOMAIN_BY_SERVER:
            self.out += bytes((t.AD_JID, _DOMAIN_BY_SERVER[jid.server], jid.device))
            self.write_string(jid.user)
        elif jid.server == MESSENGER_SERVER:
            self.out.append(t.FB_JID)
            self.write_string(jid.user)
            self.out += (jid.device or 0).to_bytes(2, "big")
            self.write_string(jid.server)
        elif jid.server == INTEROP_SERVER:
            self.out.append(t.INTEROP_JID)
            self.write_string(jid.user)
            self.out += (jid.device or 0).to_bytes(2, "big")
            self.out += jid.integrator.to_bytes(2, "big")
            self.write_string(jid.server)
        else:
            self.out.append(t.JID_PAIR)
            user = f"{jid.user}_{jid.agent}" if jid.agent else jid.user
            if user:
                self.write_string(user)
            else:
                self.out.append(t.LIST_EMPTY)
            self.write_string(jid.server)

    def write_packed(self, value: str, kind: int) -> None:
        pack = _NIBBLE_PACK if kind == t.NIBBLE_8 else _HEX_PACK
        odd = len(value) % 2
        self.out += bytes((kind, ((len(value) + 1) // 2) | (0x80 if odd else 0)))
        for i in range(0, len(value) - odd, 2):
            self.out.append((pack[value[i]] << 4) | pack[value[i + 1]])
        if odd:
            self.out.append((pack[value[-1]] << 4) | 0x0F)


def _jid_encodable(jid: Jid) -> bool:
    if "@" in jid.user:  # its parts would be JIDs inside a JID, which the decoder refuses
        return False
    if jid.device is None:
        return True
    if jid.server in _DOMAIN_BY_SERVER:
        return jid.agent == 0 and jid.device < 256
    return jid.server in (MESSENGER_SERVER, INTEROP_SERVER) and jid.agent == 0 and jid.integrator == 0


_NIBBLE_PACK: Final = {**{str(d): d for d in range(10)}, "-": 10, ".": 11}
_HEX_PACK: Final = {**{str(d): d for d in range(10)}, **{c: 10 + i for i, c in enumerate("ABCDEF")}}
_JID_TAGS: Final = frozenset((t.JID_PAIR, t.AD_JID, t.FB_JID, t.INTEROP_JID))
_NIBBLE_UNPACK: Final = "0123456789-."
_HEX_UNPACK: Final = "0123456789ABCDEF"


def _is_nibble(value: str) -> bool:
    return all(c in _NIBBLE_PACK for c in value)


def _is_hex(value: str) -> bool:
    return all(c in _HEX_PACK for c in value)


# ---------------------------------------------------------------------------------------------- decode


def decode_node(data: bytes, *, dict_version: int = t.DICT_VERSION) -> Node:
    """Parse a serialized stanza (flags byte first; zlib-inflated when flag 0x02 is set) written in the
    token dictionary ``dict_version``."""
    dictionary = t.dictionary(dict_version)
    if not data:
        raise NodeCodecError("empty stanza")
    body = data[1:]
    if data[0] & FLAG_COMPRESSED:
        inflater = zlib.decompressobj()
        try:
            body = inflater.decompress(body, MAX_INFLATED_SIZE)
        except zlib.error as exc:
            raise NodeCodecError(f"bad zlib payload: {exc}") from exc
        if inflater.unconsumed_tail:
            raise NodeCodecError("inflated stanza too large")
    reader = _Reader(body, dictionary)
    return reader.read_node()


MAX_DEPTH: Final = 64
"""Deepest nesting accepted from a peer (real stanzas nest a handful of levels)."""


class _Reader:
    __slots__ = ("data", "depth", "double", "index", "single", "single_count")

    def __init__(self, data: bytes, dictionary: t.Dictionary) -> None:
        self.data = data
        self.index = 0
        self.depth = 0
        self.single = dictionary.single
        self.single_count = len(dictionary.single)  # tokens 1..235, below every tag with a meaning of its own
        self.double = dictionary.double

    # The reader runs per node of every stanza (a key digest after each login holds ~800): the common
    # cases come first and bounds are checked by the indexing itself.

    def take(self, n: int) -> bytes:
        start = self.index
        end = start + n
        if end > len(self.data):
            raise NodeCodecError("unexpected end of stanza")
        self.index = end
        return self.data[start:end]

    def byte(self) -> int:
        try:
            value = self.data[self.index]
        except IndexError:
            raise NodeCodecError("unexpected end of stanza") from None
        self.index += 1
        return value

    def int_n(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def list_size(self, tag: int) -> int:
        if tag == t.LIST_EMPTY:
            return 0
        if tag == t.LIST_8:
            return self.byte()
        if tag == t.LIST_16:
            return self.int_n(2)
        raise NodeCodecError(f"expected a list, got tag {tag} at {self.index - 1}")

    def read_node(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise NodeCodecError(f"stanza nested deeper than {MAX_DEPTH} levels")
        try:
            return self._read_node()
        finally:
            self.depth -= 1

    def _read_node(self) -> Node:
        kind = self.byte()
        size = self.byte() if kind == t.LIST_8 else self.list_size(kind)
        if size == 0:
            raise NodeCodecError("empty node")
        read_string = self.read_string
        tag = read_string()
        if not tag:
            raise NodeCodecError("node without a tag")
        attrs: dict[str, str] = {}
        for _ in range((size - 1) >> 1):
            key = read_string()
            attrs[key] = read_string()
        return Node(tag, attrs, self.read_content() if size % 2 == 0 else None)

    def _read_children(self, count: int) -> list[Node]:
        """``count`` nodes. The commonest child of long lists (the ~800 ``<id>`` of a key digest after
        every login) has no attributes, a one-byte token tag and a short binary body: it is read in
        one step here; any other node goes through :meth:`_read_node`."""
        data, size, i = self.data, len(self.data), self.index
        single, single_count = self.single, self.single_count
        children: list[Node] = []
        for _ in range(count):
            if (i + 4 < size and data[i] == t.LIST_8 and data[i + 1] == 2 and 0 < data[i + 2] < single_count
                    and data[i + 3] == t.BINARY_8 and i + 5 + data[i + 4] <= size):
                end = i + 5 + data[i + 4]
                children.append(Node(single[data[i + 2]], {}, data[i + 5:end]))
                i = end
                continue
            self.index = i
            children.append(self._read_node())
            i = self.index
        self.index = i
        return children

    def read_content(self) -> list[Node] | bytes | None:
        tag = self.byte()
        if tag == t.BINARY_8:
            return self.take(self.byte())
        if tag == t.LIST_EMPTY:
            return None
        if tag in (t.LIST_8, t.LIST_16):
            count = self.list_size(tag)
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise NodeCodecError(f"stanza nested deeper than {MAX_DEPTH} levels")
            children = self._read_children(count)
            self.depth -= 1
            return children
        if tag in (t.BINARY_20, t.BINARY_32):
            return self.read_binary(tag)
        return self.read_value(tag).encode("utf-8", "surrogateescape")

    def read_binary(self, tag: int) -> bytes:
        if tag == t.BINARY_8:
            length = self.byte()
        elif tag == t.BINARY_20:
            length = self.int_n(3) & 0x0FFFFF
        else:
            length = self.int_n(4)
        return self.take(length)

    def read_string(self) -> str:
        tag = self.byte()
        if 0 < tag < self.single_count:
            return self.single[tag]
        if tag == t.LIST_EMPTY:
            return ""
        if tag in (t.BINARY_8, t.BINARY_20, t.BINARY_32):
            return self.read_binary(tag).decode("utf-8", "surrogateescape")
        return self.read_value(tag)

    def read_value(self, tag: int) -> str:
        if t.DICTIONARY_0 <= tag <= t.DICTIONARY_3:
            index = self.byte()
            dictionary = self.double[tag - t.DICTIONARY_0]
            if index >= len(dictionary):
                raise NodeCodecError(f"double-byte token {tag}/{index} out of range")
            return dictionary[index]
        if tag == t.JID_PAIR:
            user = self.read_jid_part()
            server = self.read_jid_part()
            if not server:
                raise JidError("JID pair without a server")
            return str(Jid(user=user, server=server))
        if tag == t.AD_JID:
            domain = self.byte()
            device = self.byte()
            user = self.read_jid_part()
            server = _SERVER_BY_DOMAIN.get(domain, USER_SERVER)
            agent = 0 if domain in _SERVER_BY_DOMAIN else domain
            return str(Jid(user=user, server=server, device=device, agent=agent))
        if tag == t.FB_JID:
            user = self.read_jid_part()
            device = self.int_n(2)
            server = self.read_jid_part()
            return str(Jid(user=user, server=server, device=device))
        if tag == t.INTEROP_JID:
            user = self.read_jid_part()
            device = self.int_n(2)
            integrator = self.int_n(2)
            server = self.read_jid_part()
            return str(Jid(user=user, server=server, device=device, integrator=integrator))
        if tag in (t.NIBBLE_8, t.HEX_8):
            return self.read_packed(tag)
        if 1 <= tag < self.single_count:
            return self.single[tag]
        raise NodeCodecError(f"invalid token {tag} at {self.index - 1}")

    def read_jid_part(self) -> str:
        """A JID's user or server: any string but a JID (nested JIDs are not a thing, and unbounded
        nesting would take the decoder past the interpreter's recursion limit)."""
        if self.index < len(self.data) and self.data[self.index] in _JID_TAGS:
            raise NodeCodecError(f"a JID inside a JID at {self.index}")
        return self.read_string()

    def read_packed(self, tag: int) -> str:
        start = self.byte()
        alphabet = _NIBBLE_UNPACK if tag == t.NIBBLE_8 else _HEX_UNPACK
        chars: list[str] = []
        for value in self.take(start & 0x7F):
            for half in (value >> 4, value & 0x0F):
                if half < len(alphabet):
                    chars.append(alphabet[half])
                elif half == 0x0F:
                    chars.append("\x00")
                else:
                    raise NodeCodecError(f"bad packed nibble {half}")
        if start & 0x80:
            if not chars:
                raise NodeCodecError("packed string marked odd but empty")
            chars.pop()
        return "".join(chars)
