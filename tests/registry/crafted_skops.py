"""Hand-written skops files, the way an attacker writes one: ``schema.json`` node by node, zipped in memory.

Importable as ``tests.registry.crafted_skops``. Each ``*_node`` function returns one node of a skops schema
(protocol 2) naming ``dotted`` (``module.attribute``); :func:`skops_bytes` zips a root node into a file.
"""

from __future__ import annotations

import io
import itertools
import json
import zipfile
from collections.abc import Callable
from typing import Any

PROTOCOL = 2
_ids = itertools.count(1)

Node = dict[str, Any]


def _node(loader: str, dotted: str, **fields: Any) -> Node:
    module, _, name = dotted.rpartition(".")
    return {"__class__": name, "__module__": module, "__loader__": loader, **fields, "__id__": next(_ids)}


def json_node(value: Any) -> Node:
    """A JSON literal (skops builds it with ``json.loads``)."""
    return _node("JsonNode", "builtins.str", content=json.dumps(value), is_json=True)


def tuple_node(*items: Node) -> Node:
    return _node("TupleNode", "builtins.tuple", content=list(items))


def dict_node(items: dict[str, Node] | None = None, dotted: str = "builtins.dict") -> Node:
    """A mapping with string keys; skops creates it with ``cls()`` and fills it."""
    items = items or {}
    key_types = _node("ListNode", "builtins.list", content=[type_node("builtins.str") for _ in items])
    return _node("DictNode", dotted, content=items, key_types=key_types)


def type_node(dotted: str) -> Node:
    """A class (or anything) stored as a value: skops imports it and returns it."""
    return _node("TypeNode", dotted)


def call_node(dotted: str, *args: Node) -> Node:
    """``dotted(*args)``: skops' ConstructorFromReduceNode calls the named object with the file's args."""
    return _node("ConstructorFromReduceNode", dotted, content=tuple_node(*args))


def loss_node(dotted: str, *args: Node) -> Node:
    """``dotted(*args)`` again, through skops' LossNode (meant for scikit-learn's Cython losses)."""
    return _node("LossNode", dotted, __reduce__={"args": tuple_node(*args)}, content=dict_node())


def tree_node(dotted: str, *args: Node) -> Node:
    """A TreeNode: skops always calls ``sklearn.tree._tree.Tree`` with the file's arguments."""
    return _node("TreeNode", dotted, __reduce__={"args": tuple_node(*args)}, content=dict_node())


def object_node(dotted: str, attrs: dict[str, Node] | None = None) -> Node:
    """``cls.__new__(cls)`` and then the file's state, through skops' ObjectNode."""
    return _node("ObjectNode", dotted, content=dict_node(attrs))


def function_node(dotted: str) -> Node:
    """A function reference (returned, and called later by whatever holds it)."""
    return _node("FunctionNode", dotted)


def partial_node(dotted: str, *args: Node) -> Node:
    """``functools.partial(dotted, *args)``: the function, with leading arguments chosen by the file."""
    return _node(
        "PartialNode",
        "functools.partial",
        content={
            "func": function_node(dotted),
            "args": tuple_node(*args),
            "kwds": dict_node(),
            "namespace": json_node(None),
        },
    )


def method_node(dotted: str, method: str) -> Node:
    """A bound method ``dotted().method`` (the instance is built by an ObjectNode)."""
    return _node("MethodNode", dotted, content={"func": method, "obj": object_node(dotted)})


def list_node(dotted: str, *items: Node) -> Node:
    """``cls([items])``: skops' ListNode calls the named object with the items."""
    return _node("ListNode", dotted, content=list(items))


def array_node(dotted: str) -> Node:
    """An object array whose class is ``dotted``: skops' NdArrayNode."""
    return _node("NdArrayNode", dotted, type="json", content=[], shape=tuple_node(json_node(0)))


def random_state_node(dotted: str) -> Node:
    """``cls()`` then ``set_state``: skops' RandomStateNode."""
    return _node("RandomStateNode", dotted, content=dict_node())


# Every way a node can name an object, each with a harmless argument list.
NODE_KINDS: dict[str, Callable[[str], Node]] = {
    "ConstructorFromReduceNode": lambda d: call_node(d, json_node("x")),
    "LossNode": lambda d: loss_node(d, json_node("x")),
    "TreeNode": lambda d: tree_node(d, json_node(1)),
    "ObjectNode": object_node,
    "TypeNode": type_node,
    "FunctionNode": function_node,
    "PartialNode": partial_node,
    "MethodNode": lambda d: method_node(d, "predict"),
    "ListNode": list_node,
    "DictNode": lambda d: dict_node(dotted=d),
    "NdArrayNode": array_node,
    "RandomStateNode": random_state_node,
}


def skops_bytes(root: Node, *, protocol: int = PROTOCOL) -> bytes:
    """A skops file holding ``root``."""
    schema = {**root, "protocol": protocol, "_skops_version": "0.16.0"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
    return buffer.getvalue()


def inside_transformer(node: Node) -> Node:
    """``node`` as the ``func`` of a FunctionTransformer, so the file looks like a real model around it."""
    return object_node(
        "sklearn.preprocessing._function_transformer.FunctionTransformer",
        {"func": node, "validate": json_node(False), "kw_args": json_node(None)},
    )
