"""The "lazy demonstrator" recipe: a tiny model learns *when* to search from GRPO, on CPU in minutes.

From tiny_learning notes §3c/§5: SFT on demonstrations that search in only 30 % of cases (the rest
answer at once with a hallucinated value of the right type) leaves a model that greedily never
searches, so its held-out exact match is near chance; the search-and-copy behaviour is still in
the policy at ~30 % probability, so GRPO samples it, rewards it, and within a few dozen steps the
model searches every time. RL fixes the *decision*; the copying skill came from the demos.

Everything here is the real stack: Search-v0's procedural world (1-hop questions, BM25 top-1,
which returns the right entity's page for an exact name), its scorer (EM), the rollout layer, the
SFT warm-up and `GRPOTrainer`. The only tiny-model accommodations are Search-v0's
`prompt_template="{question}"` (no 100-token instructions) and a model built here: a 2-layer
Qwen2 (hidden 128) with a byte-level BPE tokenizer trained on a sibling world's text (same
syllables and templates, other names), so no entity's name is a learned token. 30 % of the
entities are held out: their questions are never trained on, and evaluation uses only them.

    python -m toolgym.trainers.tiny_search_recipe --out runs/lazy-search --seed 0
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from pathlib import Path
from typing import Any

ENV_KWARGS = {
    "n_entities": 2000,
    "n_distractors": 0,
    "page_style": "plain",
    "hops": 1,
    "top_k": 1,
    "max_turns": 2,
    "prompt_template": "{question}",
    "tool_format": "search_r1",
}
SEARCH_R1_TAGS = ("<search>", "</search>", "<answer>", "</answer>", "<information>", "</information>")
HELD_OUT_SHARE = 0.3
SEARCH_SHARE = 0.3


def recipe_world(seed: int = 0) -> Any:
    """The procedural world of `ENV_KWARGS` (its `seed`: 0 is the env's, others are siblings)."""
    from toolgym.envs.search.world import WorldConfig

    keys = ("n_entities", "n_distractors", "page_style")
    return WorldConfig(seed, **{key: ENV_KWARGS[key] for key in keys})


def split_questions(n_questions: int, seed: int) -> tuple[list[int], list[int], dict[int, dict[str, Any]]]:
    """Question indices about training entities and about held-out entities, and the rows."""
    from toolgym.envs.search.world import get_world

    world = get_world(recipe_world())
    rows = {i: world.question_row(i, hops=1) for i in range(n_questions)}
    held_out = {e for e in world.entities if random.Random(f"held-out-{seed}-{e}").random() < HELD_OUT_SHARE}
    train = [i for i, row in rows.items() if row["supporting_doc_ids"][0] not in held_out]
    evaluation = [i for i, row in rows.items() if row["supporting_doc_ids"][0] in held_out]
    return train, evaluation, rows


def lazy_demonstrations(
    train: list[int], rows: dict[int, dict[str, Any]], n_demos: int, seed: int, search_share: float = SEARCH_SHARE
) -> list[dict]:
    """Message lists played against the real env: 30 % search then answer, 70 % answer a wrong guess at once."""
    import gymnasium as gym

    import toolgym  # noqa: F401
    from toolgym.envs.search.world import get_world

    world = get_world(recipe_world())
    env = gym.make("Search-v0", **ENV_KWARGS)
    rng = random.Random(f"lazy-demos-{seed}")
    answers_by_kind: dict[str, list[str]] = {}
    for index in train:
        answer = rows[index]["answer"]
        answers_by_kind.setdefault("year" if answer.isdigit() else "name", []).append(answer)
    demos = []
    for _ in range(n_demos):
        index = rng.choice(train)
        messages, _ = env.reset(seed=index, options={"index": index})
        row = rows[index]
        subject = world.entities[row["supporting_doc_ids"][0]]
        if rng.random() < search_share:
            search = f"<search> {subject.name}</search>"
            observation, *_ = env.step(search)
            answer = f"<answer> {row['answer']}</answer>"
            messages = [*messages, {"role": "assistant", "content": search}, *observation]
        else:
            guess = rng.choice(answers_by_kind["year" if row["answer"].isdigit() else "name"])
            answer = f"<answer> {guess}</answer>"
        env.step(answer)
        demos.append({"messages": [*messages, {"role": "assistant", "content": answer}], "layout": "raw"})
    env.close()
    return demos


def tokenizer_texts(n_questions: int) -> list[str]:
    """Text of a *different* world (another seed: same syllables and templates, other names).

    A BPE trained on the training entities' own text learns their names as whole tokens, so
    held-out names look out of distribution and the tiny model cannot copy them into a query
    (tiny_learning notes §1: train 1.6 vs held-out 3.1 tokens per name at a large vocabulary).
    Learning merges from a sibling world gives every entity, trained on or held out, the same
    syllable-level pieces.
    """
    from toolgym.envs.search.world import get_world

    world = get_world(recipe_world(seed=1000))
    pages = {doc.doc_id: doc for doc in world.documents}
    texts = []
    for index in range(n_questions):
        row = world.question_row(index, hops=1)
        page = pages[row["supporting_doc_ids"][0]]
        texts.append(f"{row['question']}<search> {page.title}</search>")
        texts.append(f"\n\n<information>Doc 1(Title: {page.title}) {page.text}</information>\n\n")
        texts.append(f"<answer> {row['answer']}</answer>")
    return texts


def prepare(
    out: Path,
    seed: int,
    sft_steps: int,
    grpo_steps: int,
    n_questions: int = 6000,
    n_demos: int = 6000,
    search_share: float = SEARCH_SHARE,
    vocab_size: int = 1000,
    hidden_size: int = 128,
    layers: int = 2,
    whole_tags: bool = True,
) -> Any:
    """Write the tiny model, the lazy demos and the config into `out`; return the GRPOConfig."""
    from toolgym.agents.tiny import make_tiny_model

    from .config_io import load_config

    out.mkdir(parents=True, exist_ok=True)
    train, evaluation, rows = split_questions(n_questions, seed)
    model_dir = out / "initial-model"
    if not (model_dir / "config.json").is_file():
        make_tiny_model(
            model_dir,
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            layers=layers,
            seed=seed,
            texts=tokenizer_texts(n_questions),
            init_std=0.02,
            whole_tokens=SEARCH_R1_TAGS if whole_tags else (),
        )
    demos_file = out / "lazy-demos.jsonl"
    if not demos_file.is_file():
        demos = lazy_demonstrations(train, rows, n_demos, seed, search_share)
        demos_file.write_text("".join(json.dumps(d) + "\n" for d in demos), encoding="utf-8")
    values = {
        "model": str(model_dir),
        "output_dir": str(out / "run"),
        "seed": seed,
        "env_id": "Search-v0",
        "env_kwargs": ENV_KWARGS,
        "train_task_indices": train,
        "eval_task_indices": evaluation[:300],
        "eval_every": 10,
        "num_envs": 64,
        "num_generations": 8,
        "prompts_per_step": 16,
        "max_new_tokens": 16,
        "max_episode_tokens": 256,
        "stop": ["</search>", "</answer>"],
        "learning_rate": 3e-4,
        "advantage_eps": 1e-4,
        "dynamic_sampling": True,
        "dynamic_sampling_max_rounds": 1,
        "micro_batch_size": 64,
        "total_steps": grpo_steps,
        "sft_data": str(demos_file),
        "sft_steps": sft_steps,
        "sft_batch_size": 64,
        "sft_learning_rate": 3e-3,
        "sft_warmup_steps": 50,
        "save_every": 0,
        "progress_bar": False,
    }
    config_file = out / "config.yaml"
    import yaml

    config_file.write_text(yaml.safe_dump(values), encoding="utf-8")
    return load_config(config_file)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/lazy-search", help="folder for the model, demos, config and run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sft-steps", type=int, default=1500)
    parser.add_argument("--grpo-steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    from .run import run_training

    history = run_training(prepare(Path(args.out), args.seed, args.sft_steps, args.grpo_steps))
    summary = held_out_summary(Path(args.out) / "run")
    print(json.dumps({"final_step": history[-1]["step"] if history else 0, **summary}))
    return 0


def held_out_summary(run_dir: Path) -> dict[str, float]:
    """Held-out EM and search rate before GRPO (step 0, after SFT) and at the last evaluation."""
    from .tracking import read_metrics

    evals = [row for row in read_metrics(run_dir) if "eval/reward/mean" in row]
    first, last = evals[0], evals[-1]
    return {
        "heldout_em_before": first["eval/reward/mean"],
        "heldout_em_after": last["eval/reward/mean"],
        "heldout_search_rate_before": first["eval/tools/call_frequency"],
        "heldout_search_rate_after": last["eval/tools/call_frequency"],
    }


if __name__ == "__main__":
    raise SystemExit(main())
