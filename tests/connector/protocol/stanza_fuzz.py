"""Hypothesis strategies for fuzzing stanza parsers: random nodes and mutations of real ones."""

from __future__ import annotations

from hypothesis import strategies as st

from connector.protocol.binary import Node

_TAGS = ["iq", "usync", "list", "user", "devices", "device-list", "device", "key-index-list", "lid", "error",
         "registration", "type", "identity", "skey", "key", "keys", "id", "value", "signature", "receipt", "retry",
         "ack", "message", "enc", "participants", "to", "item", "device-identity"]
_ATTRS = ["id", "jid", "type", "from", "to", "t", "count", "v", "error", "code", "text", "key-index", "is_hosted",
          "val", "ts", "class", "phash", "participant", "recipient", "reason", "notify", "addressing_mode",
          "participant_pn", "sender_lid", "mediatype", "server_id"]
_VALUES = st.one_of(
    st.sampled_from(["result", "error", "retry", "read", "0", "1", "2", "5", "255", "256", "-1", "²", "",
                     "4915550001@s.whatsapp.net", "4915550001:3@s.whatsapp.net", "12345@lid", "12345:2@lid",
                     "120363000000000001@g.us", "@s.whatsapp.net", "bad@", "a:b@c", "x:99999@s.whatsapp.net",
                     "pkmsg", "msg", "skmsg", "true", "lid", "pn", "message"]),
    st.text(max_size=12),
)
_CONTENT_BYTES = st.one_of(st.binary(max_size=70), st.sampled_from([b"\x05", bytes(3), bytes(4), bytes(32), bytes(64)]))


def nodes(max_leaves: int = 25) -> st.SearchStrategy[Node]:
    """Random node trees with the tags and attributes the parsers look for."""
    leaf = st.builds(Node, st.sampled_from(_TAGS), st.dictionaries(st.sampled_from(_ATTRS), _VALUES, max_size=4),
                     st.one_of(st.none(), _CONTENT_BYTES))
    return st.recursive(
        leaf,
        lambda children: st.builds(Node, st.sampled_from(_TAGS),
                                   st.dictionaries(st.sampled_from(_ATTRS), _VALUES, max_size=4),
                                   st.lists(children, max_size=5)),
        max_leaves=max_leaves,
    )


def copy_node(node: Node) -> Node:
    content = [copy_node(c) for c in node.content] if isinstance(node.content, list) else node.content
    return Node(node.tag, dict(node.attrs), content)


def _all(node: Node) -> list[Node]:
    return list(node.walk())


@st.composite
def mutated(draw: st.DrawFn, original: Node) -> Node:
    """``original`` with a few random edits: attributes changed or removed, children dropped or duplicated,
    contents replaced or truncated, subtrees swapped for random nodes."""
    node = copy_node(original)
    for _ in range(draw(st.integers(1, 4))):
        targets = _all(node)
        target = targets[draw(st.integers(0, len(targets) - 1))]
        op = draw(st.sampled_from(["set_attr", "del_attr", "drop_child", "dup_child", "content", "cut", "graft"]))
        if op == "set_attr":
            target.attrs[draw(st.sampled_from(_ATTRS))] = draw(_VALUES)
        elif op == "del_attr" and target.attrs:
            del target.attrs[draw(st.sampled_from(sorted(target.attrs)))]
        elif op in ("drop_child", "dup_child") and isinstance(target.content, list) and target.content:
            index = draw(st.integers(0, len(target.content) - 1))
            if op == "drop_child":
                del target.content[index]
            else:
                target.content.insert(index, copy_node(target.content[index]))
        elif op == "content":
            target.content = draw(st.one_of(st.none(), _CONTENT_BYTES))
        elif op == "cut" and isinstance(target.content, bytes) and target.content:
            target.content = target.content[:draw(st.integers(0, len(target.content) - 1))]
        elif op == "graft":
            graft = draw(nodes(max_leaves=5))
            if isinstance(target.content, list):
                target.content.append(graft)
            else:
                target.content = [graft]
    return node
