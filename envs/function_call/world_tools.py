"""A small stateful world of tools: a file system, bank accounts and a shop.

The whole state is one JSON-serializable dict (so task rows can carry it), with one key per
domain present:

- ``fs``: ``{"cwd": "/docs", "tree": {"docs": {"a.txt": "text"}}}`` (dicts are folders, strings files);
- ``bank``: ``{"accounts": {"ACC-1042": {"owner": "Alice", "balance": 120}}}``;
- ``shop``: ``{"stock": {"widget": 4}, "orders": {"1001": {"item": "widget", "quantity": 2}},
  "next_order_id": 1002}``.

Every tool is a method with a JSON schema. `ToolWorld.execute` validates arguments with
`jsonschema` before running the method, and turns every problem (unknown tool, schema violation,
domain error such as insufficient funds) into a `ToolOutcome` with an error: model input never
raises.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
PATH_PATTERN = r"^[A-Za-z0-9_./-]{1,256}$"
MAX_FS_NODES = 400  # bounds how much a model can grow the tree
MAX_ORDERS = 500
MAX_QUANTITY = 10_000


class DomainError(Exception):
    """A tool refused a well-formed request (no such file, insufficient funds, …)."""


@dataclass(frozen=True)
class ToolOutcome:
    """A tool's result text, and the error kind when it failed ("unknown_tool", "schema", "domain")."""

    content: str
    error_kind: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_kind is None


def _string(description: str, pattern: str | None = None, max_length: int = 256) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "description": description, "maxLength": max_length}
    if pattern:
        schema["pattern"] = pattern
    return schema


def _params(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


_QUANTITY = {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY, "description": "Number of units (positive)."}

# name -> (domain, description, JSON schema of the arguments)
TOOL_SPECS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "pwd": ("fs", "Print the current working directory.", _params({})),
    "ls": (
        "fs",
        "List the contents of a folder (default: the current directory). Folders end with '/'.",
        _params({"path": _string("Folder path, absolute or relative.", PATH_PATTERN)}, required=[]),
    ),
    "cd": (
        "fs",
        "Change the current directory ('..' goes up, '/' is the root).",
        _params({"folder": _string("Folder path.", PATH_PATTERN)}),
    ),
    "mkdir": ("fs", "Create a new folder.", _params({"dir_name": _string("Path of the new folder.", PATH_PATTERN)})),
    "cat": ("fs", "Show the text of a file.", _params({"file_name": _string("File path.", PATH_PATTERN)})),
    "write_file": (
        "fs",
        "Create or overwrite a file with the given text.",
        _params(
            {
                "file_name": _string("File path.", PATH_PATTERN),
                "content": _string("The file's text.", max_length=10_000),
            }
        ),
    ),
    "rm": ("fs", "Delete a file.", _params({"file_name": _string("File path.", PATH_PATTERN)})),
    "mv": (
        "fs",
        "Move or rename a file or folder. If the destination is an existing folder, the source moves into it.",
        _params(
            {
                "source": _string("Path to move.", PATH_PATTERN),
                "destination": _string("Target folder or new path.", PATH_PATTERN),
            }
        ),
    ),
    "list_accounts": ("bank", "List all bank accounts with their owners.", _params({})),
    "get_balance": (
        "bank",
        "Get an account's balance in dollars.",
        _params({"account_id": _string("Account id, e.g. ACC-1042.", NAME_PATTERN)}),
    ),
    "transfer": (
        "bank",
        "Transfer whole dollars from one account to another.",
        _params(
            {
                "from_account": _string("Account id to take money from.", NAME_PATTERN),
                "to_account": _string("Account id to pay into.", NAME_PATTERN),
                "amount": {"type": "integer", "minimum": 1, "maximum": 10_000_000, "description": "Dollars to move."},
            }
        ),
    ),
    "check_stock": ("shop", "Units of an item in stock.", _params({"item": _string("Item name.", NAME_PATTERN)})),
    "list_orders": ("shop", "List open orders.", _params({})),
    "place_order": (
        "shop",
        "Order units of an item; they leave the stock.",
        _params({"item": _string("Item name.", NAME_PATTERN), "quantity": _QUANTITY}),
    ),
    "cancel_order": (
        "shop",
        "Cancel an open order; its units return to stock.",
        _params({"order_id": _string("Order id, e.g. '1001'.", NAME_PATTERN)}),
    ),
    "restock": (
        "shop",
        "Add units of an item to the stock.",
        _params({"item": _string("Item name.", NAME_PATTERN), "quantity": _QUANTITY}),
    ),
}
DOMAINS: tuple[str, ...] = ("fs", "bank", "shop")


def tool_schemas(domains: list[str] | tuple[str, ...]) -> list[dict[str, Any]]:
    """OpenAI tool schemas of the tools of the given domains, in a fixed order."""
    return [
        {
            "type": "function",
            "function": {"name": name, "description": description, "parameters": copy.deepcopy(schema)},
        }
        for name, (domain, description, schema) in TOOL_SPECS.items()
        if domain in domains
    ]


@cache
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(TOOL_SPECS[name][2])


class ToolWorld:
    """A mutable copy of a world state plus the tools that act on it."""

    def __init__(self, state: dict[str, Any]):
        self.state = copy.deepcopy(state)
        self.domains = [d for d in DOMAINS if d in self.state]

    def tools(self) -> list[dict[str, Any]]:
        return tool_schemas(self.domains)

    def execute(self, name: str, arguments: Any) -> ToolOutcome:
        """Validate and run one call. Never raises on model input."""
        if name not in TOOL_SPECS or TOOL_SPECS[name][0] not in self.domains:
            available = ", ".join(t["function"]["name"] for t in self.tools())
            return ToolOutcome(f"Error: unknown tool {name!r:.80}. Available tools: {available}.", "unknown_tool")
        if not isinstance(arguments, dict):
            return ToolOutcome(f"Error: arguments of {name} must be a JSON object.", "schema")
        error = next(iter(_validator(name).iter_errors(arguments)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "arguments"
            return ToolOutcome(f"Error: invalid arguments for {name} ({where}): {error.message[:300]}", "schema")
        method: Callable[..., Any] = getattr(self, f"_tool_{name}")
        try:
            result = method(**arguments)
        except DomainError as exc:
            return ToolOutcome(f"Error: {exc}", "domain")
        return ToolOutcome(result if isinstance(result, str) else json.dumps(result, ensure_ascii=False))

    def comparable(self) -> dict[str, Any]:
        """The parts of the state a goal is judged on: no cwd, no order-id counter, orders as a multiset."""
        view: dict[str, Any] = {}
        if "fs" in self.state:
            view["fs"] = self.state["fs"]["tree"]
        if "bank" in self.state:
            view["bank"] = {k: v["balance"] for k, v in self.state["bank"]["accounts"].items()}
        if "shop" in self.state:
            orders = sorted((o["item"], o["quantity"]) for o in self.state["shop"]["orders"].values())
            view["shop"] = {"stock": self.state["shop"]["stock"], "orders": orders}
        return view

    # --- file system ---------------------------------------------------------------------------

    def _segments(self, path: str) -> list[str]:
        base = [] if path.startswith("/") else [s for s in self.state["fs"]["cwd"].split("/") if s]
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if base:
                    base.pop()
            else:
                base.append(part)
        return base

    def _node(self, segments: list[str]) -> Any:
        node: Any = self.state["fs"]["tree"]
        for part in segments:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def _folder(self, path: str) -> dict[str, Any]:
        node = self._node(self._segments(path))
        if not isinstance(node, dict):
            raise DomainError(f"no such folder: {path}")
        return node

    def _parent_and_name(self, path: str) -> tuple[dict[str, Any], str]:
        segments = self._segments(path)
        if not segments:
            raise DomainError("the root folder cannot be the target")
        parent = self._node(segments[:-1])
        if not isinstance(parent, dict):
            raise DomainError(f"no such folder: /{'/'.join(segments[:-1])}")
        return parent, segments[-1]

    def _count_nodes(self) -> int:
        def count(node: Any) -> int:
            return 1 + sum(count(child) for child in node.values()) if isinstance(node, dict) else 1

        return count(self.state["fs"]["tree"])

    def _check_capacity(self) -> None:
        if self._count_nodes() >= MAX_FS_NODES:
            raise DomainError(f"the disk is full ({MAX_FS_NODES} files and folders)")

    def _tool_pwd(self) -> str:
        return self.state["fs"]["cwd"]

    def _tool_ls(self, path: str = ".") -> list[str]:
        folder = self._folder(path)
        return sorted(name + "/" if isinstance(child, dict) else name for name, child in folder.items())

    def _tool_cd(self, folder: str) -> str:
        self._folder(folder)
        self.state["fs"]["cwd"] = "/" + "/".join(self._segments(folder))
        return f"Current directory: {self.state['fs']['cwd']}"

    def _tool_mkdir(self, dir_name: str) -> str:
        parent, name = self._parent_and_name(dir_name)
        if name in parent:
            raise DomainError(f"{dir_name} already exists")
        self._check_capacity()
        parent[name] = {}
        return f"Created folder {dir_name}"

    def _tool_cat(self, file_name: str) -> str:
        node = self._node(self._segments(file_name))
        if not isinstance(node, str):
            raise DomainError(f"no such file: {file_name}")
        return node

    def _tool_write_file(self, file_name: str, content: str) -> str:
        parent, name = self._parent_and_name(file_name)
        if isinstance(parent.get(name), dict):
            raise DomainError(f"{file_name} is a folder")
        if name not in parent:
            self._check_capacity()
        parent[name] = content
        return f"Wrote {len(content)} characters to {file_name}"

    def _tool_rm(self, file_name: str) -> str:
        parent, name = self._parent_and_name(file_name)
        if not isinstance(parent.get(name), str):
            raise DomainError(f"no such file: {file_name} (rm deletes files only)")
        del parent[name]
        return f"Deleted {file_name}"

    def _tool_mv(self, source: str, destination: str) -> str:
        source_segments = self._segments(source)
        src_parent, src_name = self._parent_and_name(source)
        if src_name not in src_parent:
            raise DomainError(f"no such file or folder: {source}")
        target = self._node(self._segments(destination))
        if isinstance(target, dict):
            dst_parent, dst_name = target, src_name
            dst_segments = [*self._segments(destination), src_name]
        else:
            dst_parent, dst_name = self._parent_and_name(destination)
            dst_segments = self._segments(destination)
        if dst_segments[: len(source_segments)] == source_segments:
            raise DomainError("cannot move a folder into itself")
        if dst_name in dst_parent:
            raise DomainError(f"{'/' + '/'.join(dst_segments)} already exists")
        dst_parent[dst_name] = src_parent.pop(src_name)
        if not isinstance(self._node(self._segments(".")), dict):
            self.state["fs"]["cwd"] = "/"  # the current folder moved away
        return f"Moved {source} to /{'/'.join(dst_segments)}"

    # --- bank ----------------------------------------------------------------------------------

    def _account(self, account_id: str) -> dict[str, Any]:
        accounts = self.state["bank"]["accounts"]
        if account_id not in accounts:
            raise DomainError(f"no such account: {account_id}")
        return accounts[account_id]

    def _tool_list_accounts(self) -> list[dict[str, str]]:
        return [{"account_id": k, "owner": v["owner"]} for k, v in sorted(self.state["bank"]["accounts"].items())]

    def _tool_get_balance(self, account_id: str) -> dict[str, Any]:
        return {"account_id": account_id, "balance": self._account(account_id)["balance"]}

    def _tool_transfer(self, from_account: str, to_account: str, amount: int) -> str:
        source, target = self._account(from_account), self._account(to_account)
        if from_account == to_account:
            raise DomainError("from_account and to_account are the same account")
        if source["balance"] < amount:
            raise DomainError(f"insufficient funds: {from_account} holds ${source['balance']}, cannot send ${amount}")
        source["balance"] -= amount
        target["balance"] += amount
        return f"Transferred ${amount} from {from_account} to {to_account}"

    # --- shop ----------------------------------------------------------------------------------

    def _stock_of(self, item: str) -> int:
        stock = self.state["shop"]["stock"]
        if item not in stock:
            raise DomainError(f"unknown item: {item}. Items: {', '.join(sorted(stock))}")
        return stock[item]

    def _tool_check_stock(self, item: str) -> dict[str, Any]:
        return {"item": item, "in_stock": self._stock_of(item)}

    def _tool_list_orders(self) -> list[dict[str, Any]]:
        return [{"order_id": k, **v} for k, v in sorted(self.state["shop"]["orders"].items())]

    def _tool_place_order(self, item: str, quantity: int) -> str:
        shop = self.state["shop"]
        if self._stock_of(item) < quantity:
            raise DomainError(f"out of stock: only {shop['stock'][item]} {item} left, cannot order {quantity}")
        if len(shop["orders"]) >= MAX_ORDERS:
            raise DomainError(f"too many open orders ({MAX_ORDERS})")
        order_id = str(shop["next_order_id"])
        shop["next_order_id"] += 1
        shop["stock"][item] -= quantity
        shop["orders"][order_id] = {"item": item, "quantity": quantity}
        return f"Placed order {order_id}: {quantity} x {item}"

    def _tool_cancel_order(self, order_id: str) -> str:
        shop = self.state["shop"]
        order = shop["orders"].pop(order_id, None)
        if order is None:
            raise DomainError(f"no open order {order_id}")
        shop["stock"][order["item"]] += order["quantity"]
        return f"Cancelled order {order_id}"

    def _tool_restock(self, item: str, quantity: int) -> str:
        self._stock_of(item)
        self.state["shop"]["stock"][item] += quantity
        return f"Restocked {quantity} x {item}; now {self.state['shop']['stock'][item]} in stock"
