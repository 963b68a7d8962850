"""The "lazy demonstrator" recipe: a tiny model learns *when* to search from GRPO, on CPU in minutes.

From tiny_learning notes §3c/§5: SFT on demonstrations that search in only 30 % of cases (the rest
answer at once with a hallucinated value of the right type) leaves a model that greedily never
searches, so its held-out exact match is near zero; the search-and-copy behaviour is still in the
policy at a small probability, so GRPO samples it, rewards it, and within a few dozen steps the
model searches every time. RL fixes the *decision*; the reading skill comes from demonstrations.

Two SFT stages, because on Search-v0's world the lazy demos alone do not teach reading: its pages
and names are longer than the notes' toy world, and with 70 % of the demos answering a guess the
tiny model never learns to copy an unseen name (measured: held-out EM 0.0 after RL, searching
every time). So stage 1 (`reader_steps`) is SFT on demos that always search, which teaches reading
(held-out EM ~0.3 after 1,200 steps); stage 2 (the config's SFT warm-up, 400 steps) is the lazy
demonstrator, which installs the habit of answering at once (held-out search rate 0, EM ~0). GRPO
then restores the decision. It is the shape of a real failure: a later fine-tuning stage that
answers without tools teaches a tool-using model to skip them.

Everything here is the real stack: Search-v0's procedural world (1-hop questions, BM25 top-1,
which returns the right entity's page for an exact name), its scorer (EM), the rollout layer, the
trainer's SFT (`sft_train`) and `GRPOTrainer`. The tiny-model accommodations are Search-v0's
`prompt_template="{question}"` (no 100-token instructions) and `page_style="plain"` (one sentence
per fact), 10,000 entities (fewer let the model memorise names instead of copying them), and a
model built here: a 2-layer Qwen2 (hidden 128) with a byte-level BPE of 1,000 tokens trained on a
sibling world's text (same syllables and templates, other names, so no entity's name is a learned
token) plus Search-R1's tags as whole tokens. 30 % of the entities are held out: their questions
are never trained on, and evaluation uses only them (300 questions).

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
    "n_entities": 10000,
    "n_distractors": 0,
    "page_style": "plain",
    "hops": 1,
    "top_k": 1,
    "max_turns": 2,
    "prompt_template": "{question}",
    "tool_format": "search_r1",
}
logger = logging.getLogger(__name__)
SEARCH_R1_TAGS = ("<search>", "</search>", "<answer>", "</answer>", "<information>", "</information>")
HELD_OUT_SHARE = 0.3
READER_STEPS = 1200
READER_LEARNING_RATE = 3e-3
LAZY_LEARNING_RATE = 1e-3
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


def demonstrations(
    train: list[int], rows: dict[int, dict[str, Any]], n_demos: int, seed: int, search_share: float = SEARCH_SHARE
) -> list[dict]:
    """Message lists played against the real env: a `search_share` of them search and answer from the
    page, the rest answer a guess of the right type at once (1.0: the reader warm-up; 0.3: the lazy
    demonstrator)."""
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
    reader_steps: int = READER_STEPS,
    n_questions: int = 40000,
    n_demos: int = 40000,
    search_share: float = SEARCH_SHARE,
    vocab_size: int = 1000,
    hidden_size: int = 128,
    layers: int = 2,
    whole_tags: bool = True,
) -> Any:
    """Write the tiny model, the reader warm-up, the lazy demos and the config into `out`.

    Stage 1 (`reader_steps`, here): SFT on demonstrations that always search, which teaches the
    skill RL cannot install in minutes, reading a page and copying a name (tiny_learning notes
    §3b). Stage 2 (`sft_steps`, the returned config's SFT warm-up): SFT on the lazy demonstrator,
    which installs the habit of answering at once. Returns the GRPOConfig of stage 2 + GRPO.
    """
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
    reader_dir = out / "reader-model"
    if reader_steps and not (reader_dir / "config.json").is_file():
        reader_demos = out / "reader-demos.jsonl"
        write_demonstrations(reader_demos, demonstrations(train, rows, n_demos, seed, search_share=1.0))
        warm_up(model_dir, reader_demos, reader_steps, seed, reader_dir)
    demos_file = out / "lazy-demos.jsonl"
    if not demos_file.is_file():
        write_demonstrations(demos_file, demonstrations(train, rows, n_demos, seed + 1, search_share))
    values = {
        "model": str(reader_dir if reader_steps else model_dir),
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
        "sft_learning_rate": LAZY_LEARNING_RATE if reader_steps else READER_LEARNING_RATE,
        "sft_warmup_steps": 50,
        "save_every": 0,
        "progress_bar": False,
    }
    config_file = out / "config.yaml"
    import yaml

    config_file.write_text(yaml.safe_dump(values), encoding="utf-8")
    return load_config(config_file)


def write_demonstrations(path: Path, demos: list[dict]) -> None:
    path.write_text("".join(json.dumps(d) + "\n" for d in demos), encoding="utf-8")


def warm_up(model_dir: Path, demos_file: Path, steps: int, seed: int, out_dir: Path) -> None:
    """Stage 1: the trainer's own SFT (`sft_train`) on always-searching demos; the result is saved as a model folder."""
    from toolgym.agents.hf_engine import load_model_and_tokenizer

    from .sft import load_demonstrations, sft_train

    model, tokenizer = load_model_and_tokenizer(model_dir, device="cpu", dtype="float32")
    model.train()
    demos = load_demonstrations(demos_file, tokenizer)
    losses = sft_train(model, demos, steps, 64, READER_LEARNING_RATE, 50, 1.0, seed, tokenizer.pad_token_id)
    logger.info("reader warm-up: %d steps, loss %.4f -> %.4f", steps, losses[0], losses[-1])
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/lazy-search", help="folder for the model, demos, config and run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reader-steps", type=int, default=READER_STEPS, help="stage 1: SFT on always-searching demos")
    parser.add_argument("--sft-steps", type=int, default=400, help="stage 2: SFT on the lazy demonstrator")
    parser.add_argument("--grpo-steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    from .run import run_training

    history = run_training(prepare(Path(args.out), args.seed, args.sft_steps, args.grpo_steps, args.reader_steps))
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
