"""Procedural multi-turn tasks over the tool world: an initial state, a goal, and its gold calls.

A task is generated from a seed by sampling a small world (files, accounts, a shop) and then a
hidden sequence of goal operations ("move this file there", "send the whole balance of …").
Each operation is written as a sentence for the goal text and as the calls that achieve it; the
calls are replayed on a copy of the world to get the goal state. The goal is met when the final
world equals the goal state on the compared parts (`ToolWorld.comparable`), so extra changes
fail too.

`difficulty` (an int >= 1) sets the number of operations, how many domains the world holds, and
from 2 on adds operations that need information first (read a file, a balance or a stock level)
and accounts named by owner only.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from .world_tools import DOMAINS, ToolWorld

Call = dict[str, Any]
Operation = tuple[str, list[Call]]

_FOLDERS = [
    "docs",
    "archive",
    "projects",
    "photos",
    "music",
    "backup",
    "reports",
    "drafts",
    "invoices",
    "travel",
    "recipes",
    "notes",
]
_FILES = [
    "report.txt",
    "budget.csv",
    "todo.md",
    "notes.txt",
    "resume.pdf",
    "photo1.jpg",
    "draft.docx",
    "summary.txt",
    "plan.md",
    "data.csv",
    "letter.txt",
    "invoice_042.pdf",
    "ideas.txt",
    "trip.md",
]
_TEXTS = [
    "quarterly numbers look fine",
    "buy milk and eggs",
    "meeting moved to friday",
    "call the plumber",
    "draft v2 ready",
    "pack sunscreen",
    "rent due on the 1st",
    "ship it",
]
_OWNERS = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi"]
_ITEMS = ["widget", "gadget", "sprocket", "gizmo", "flange", "bolt", "gear", "valve"]

SYSTEM_PROMPT = (
    "You operate a small simulated computer system through function calls: a file system, bank accounts "
    "and/or a shop, depending on the tools listed below. Carry out the user's request exactly, changing "
    "nothing else. You may call tools over several turns and read their results. When the request is "
    "complete, reply with a short confirmation that contains no tool call."
)


def _call(name: str, **arguments: Any) -> Call:
    return {"name": name, "arguments": arguments}


def _sample_state(rng: random.Random, domains: Sequence[str], difficulty: int) -> dict[str, Any]:
    size = 2 + min(difficulty, 4)
    state: dict[str, Any] = {}
    if "fs" in domains:
        tree: dict[str, Any] = {}
        for folder in rng.sample(_FOLDERS, size):
            tree[folder] = {name: rng.choice(_TEXTS) for name in rng.sample(_FILES, rng.randint(1, 3))}
        tree[rng.choice(_FILES)] = rng.choice(_TEXTS)
        state["fs"] = {"cwd": "/", "tree": tree}
    if "bank" in domains:
        owners = rng.sample(_OWNERS, size)
        ids = rng.sample(range(1000, 10000), size)
        state["bank"] = {
            "accounts": {f"ACC-{i}": {"owner": o, "balance": rng.randrange(50, 2000, 10)} for i, o in zip(ids, owners)}
        }
    if "shop" in domains:
        items = rng.sample(_ITEMS, size)
        stock = {item: rng.randint(3, 40) for item in items}
        orders = {
            str(1001 + k): {"item": rng.choice(items), "quantity": rng.randint(1, 5)} for k in range(rng.randint(1, 2))
        }
        state["shop"] = {"stock": stock, "orders": orders, "next_order_id": 1001 + len(orders)}
    return state


# --- operations: (sentence, gold calls) from the current world, or None when not applicable -------


def _files(world: ToolWorld) -> list[tuple[str, str]]:
    tree = world.state["fs"]["tree"]
    return [
        (folder, name)
        for folder, node in tree.items()
        if isinstance(node, dict)
        for name, f in node.items()
        if isinstance(f, str)
    ]


def _folders(world: ToolWorld) -> list[str]:
    return [name for name, node in world.state["fs"]["tree"].items() if isinstance(node, dict)]


def _op_move_file(world: ToolWorld, rng: random.Random, difficulty: int) -> Operation | None:
    tree = world.state["fs"]["tree"]
    options = [(a, f, b) for a, f in _files(world) for b in _folders(world) if b != a and f not in tree[b]]
    if not options:
        return None
    a, f, b = rng.choice(options)
    return f"Move the file '{f}' from /{a} into the folder /{b}.", [
        _call("cd", folder=f"/{a}"),
        _call("mv", source=f, destination=f"/{b}"),
    ]


def _op_rename_file(world: ToolWorld, rng: random.Random, difficulty: int) -> Operation | None:
    tree = world.state["fs"]["tree"]
    options = [(a, f, g) for a, f in _files(world) for g in _FILES if g not in tree[a]]
    if not options:
        return None
    a, f, g = rng.choice(options)
    return f"Rename /{a}/{f} to '{g}', keeping it in /{a}.", [_call("mv", source=f"/{a}/{f}", destination=f"/{a}/{g}")]


def _op_make_folder(world: ToolWorld, rng: random.Random, difficulty: int) -> Operation | None:
    tree = world.state["fs"]["tree"]
    options = [(a, n) for a in _folders(world) for n in _FOLDERS if n not in tree[a]]
    if not options:
        return None
    a, n = rng.choice(options)
    return f"Create a new folder named '{n}' inside /{a}.", [_call("cd", folder=f"/{a}"), _call("mkdir", dir_name=n)]


def _op_write_file(world: ToolWorld, rng: random.Random, difficulty: int) -> Operation | None:
    tree = world.state["fs"]["tree"]
    options = [(a, n) for a in _folders(world) for n in _FILES if n not in tree[a]]
    if not options:
        return None
    a, n = rng.choice(options)
    text = rng.choice(_TEXTS)
    return f"Create a file /{a}/{n} whose text is exactly: {text}", [
        _call("write_file", file_name=f"/{a}/{n}", content=text)
    ]


def _op_delete_file(world: ToolWorld, rng: random.Random, difficulty: int) -> Operation | None:
    files = _files(world)
    if not files:
        return None
    a, f = rng.choice(files)
    return f"Delete the file /{a}/{f}.", [_call("rm", file_name=f"/{a}/{f}")]


def _op_copy_file(world: ToolWorld, rng: random.Random, difficulty: int) -> Operation | None:
    tree = world.state["fs"]["tree"]
    options = [(a, f, b) for a, f in _files(world) for b in _folders(world) if b != a and f not in tree[b]]
    if difficulty < 2 or not options:
        return None
    a, f, b = rng.choice(options)
    text = tree[a][f]
    sentence = f"Copy /{a}/{f} into /{b} (same name, same text), leaving the original in place."
    return sentence, [_call("cat", file_name=f"/{a}/{f}"), _call("write_file", file_name=f"/{b}/{f}", content=text)]


def _account_phrase(world: ToolWorld, account_id: str, difficulty: int) -> str:
    owner = world.state["bank"]["accounts"][account_id]["owner"]
    return f"{owner}'s account" if difficulty >= 2 else f"{owner}'s account ({account_id})"


def _op_transfer(world: ToolWorld, rng: random.Random, difficulty: int) -> Operation | None:
    accounts = world.state["bank"]["accounts"]
    payers = [k for k, v in accounts.items() if v["balance"] >= 20]
    if not payers:
        return None
    source = rng.choice(sorted(payers))
    target = rng.choice(sorted(k for k in accounts if k != source))
    amount = rng.randrange(10, accounts[source]["balance"], 10) if accounts[source]["balance"] > 10 else 10
    sentence = f"Transfer ${amount} from {_account_phrase(world, source, difficulty)} to {_account_phrase(world, target, difficulty)}."
    calls = ([_call("list_accounts")] if difficulty >= 2 else []) + [
        _call("transfer", from_account=source, to_account=target, amount=amount)
    ]
    return sentence, calls


def _op_sweep(world: ToolWorld, rng: random.Random, difficulty: int) -> Operation | None:
    accounts = world.state["bank"]["accounts"]
    payers = sorted(k for k, v in accounts.items() if v["balance"] > 0)
    if difficulty < 2 or not payers:
        return None
    source = rng.choice(payers)
    target = rng.choice(sorted(k for k in accounts if k != source))
    sentence = f"Move the entire balance of account {source} into account {target}."
    calls = [
        _call("get_balance", account_id=source),
        _call("transfer", from_account=source, to_account=target, amount=accounts[source]["balance"]),
    ]
    return sentence, calls


def _op_order(world: ToolWorld, rng: random.Random, difficulty: int) -> Operation | None:
    stock = world.state["shop"]["stock"]
    items = sorted(i for i, n in stock.items() if n >= 1)
    if not items:
        return None
    item = rng.choice(items)
    quantity = rng.randint(1, min(stock[item], 10))
    return f"Place an order for {quantity} {item}(s).", [_call("place_order", item=item, quantity=quantity)]


def _op_order_all(world: ToolWorld, rng: random.Random, difficulty: int) -> Operation | None:
    stock = world.state["shop"]["stock"]
    items = sorted(i for i, n in stock.items() if n >= 1)
    if difficulty < 2 or not items:
        return None
    item = rng.choice(items)
    calls = [_call("check_stock", item=item), _call("place_order", item=item, quantity=stock[item])]
    return f"Order every {item} that is currently in stock, in one order.", calls


def _op_restock(world: ToolWorld, rng: random.Random, difficulty: int) -> Operation | None:
    item = rng.choice(sorted(world.state["shop"]["stock"]))
    quantity = rng.randint(2, 25)
    return f"Restock {item} with {quantity} more units.", [_call("restock", item=item, quantity=quantity)]


def _op_cancel(world: ToolWorld, rng: random.Random, difficulty: int) -> Operation | None:
    orders = world.state["shop"]["orders"]
    if not orders:
        return None
    order_id = rng.choice(sorted(orders))
    calls = ([_call("list_orders")] if difficulty >= 2 else []) + [_call("cancel_order", order_id=order_id)]
    return f"Cancel order #{order_id}.", calls


OPERATIONS: dict[str, list[Callable[[ToolWorld, random.Random, int], Operation | None]]] = {
    "fs": [_op_move_file, _op_rename_file, _op_make_folder, _op_write_file, _op_delete_file, _op_copy_file],
    "bank": [_op_transfer, _op_sweep],
    "shop": [_op_order, _op_order_all, _op_restock, _op_cancel],
}


MAX_DIFFICULTY = 20  # operations per goal; beyond it goals stop being tasks and become endurance tests


def check_world_difficulty(difficulty: Any) -> None:
    """Refuse a difficulty outside [1, MAX_DIFFICULTY] with the accepted range in the message."""
    if isinstance(difficulty, bool) or not isinstance(difficulty, int) or not 1 <= difficulty <= MAX_DIFFICULTY:
        raise ValueError(f"difficulty must be an integer in [1, {MAX_DIFFICULTY}], got {difficulty!r:.60}")


def generate_world_task(seed: int, difficulty: int = 1, domains: Sequence[str] | None = None) -> dict[str, Any]:
    """The task row for `seed`: JSON-serializable, and identical for the same arguments."""
    check_world_difficulty(difficulty)
    allowed = list(domains or DOMAINS)
    unknown = [d for d in allowed if d not in DOMAINS]
    if unknown:
        raise ValueError(f"unknown tool-world domains {unknown}; choose from {DOMAINS}")
    rng = random.Random(f"toolworld-{seed}-{difficulty}-{','.join(allowed)}")
    for _ in range(100):  # a draw whose operations cancel out is redrawn
        row = _draw(rng, seed, difficulty, allowed)
        if row is not None:
            return row
    raise RuntimeError(f"could not generate a tool-world task for seed {seed}")  # pragma: no cover


def _draw(rng: random.Random, seed: int, difficulty: int, allowed: list[str]) -> dict[str, Any] | None:
    chosen = sorted(rng.sample(allowed, min(len(allowed), difficulty)), key=DOMAINS.index)
    initial = _sample_state(rng, chosen, difficulty)
    world = ToolWorld(initial)
    sentences, gold = [], []
    plan = (chosen * difficulty)[:difficulty]
    rng.shuffle(plan)
    for domain in plan:
        operation = None
        for _ in range(20):
            operation = rng.choice(OPERATIONS[domain])(world, rng, difficulty)
            if operation is not None:
                break
        if operation is None:
            return None
        sentence, calls = operation
        for call in calls:
            if not world.execute(call["name"], call["arguments"]).ok:
                return None
        sentences.append(sentence)
        gold.extend(calls)
    if world.comparable() == ToolWorld(initial).comparable():
        return None
    steps = "\n".join(f"{i}. {s}" for i, s in enumerate(sentences, start=1))
    goal = f"Please do the following, in order:\n{steps}\nWhen everything is done, reply with a short confirmation."
    return {
        "id": f"toolworld_d{difficulty}_{seed}",
        "kind": "tool_world",
        "seed": seed,
        "difficulty": difficulty,
        "domains": chosen,
        "initial_state": initial,
        "goal": goal,
        "gold_calls": gold,
        "goal_state": world.state,
    }


def is_world_row(row: Any) -> bool:
    """Whether a task row is a tool-world task (rather than a BFCL question); either state key
    decides, so a world row missing the other is reported as a malformed world row."""
    return isinstance(row, dict) and ("initial_state" in row or "goal_state" in row)


def goal_met(world: ToolWorld, goal_state: dict[str, Any]) -> bool:
    """The goal predicate: the compared parts of the final world equal those of the goal state."""
    return world.comparable() == ToolWorld(goal_state).comparable()
