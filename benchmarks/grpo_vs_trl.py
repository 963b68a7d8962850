"""ToolGym's GRPO trainer vs TRL's `GRPOTrainer` (trl 1.16) on identical single-turn work, on CPU.

    python benchmarks/grpo_vs_trl.py                    # 8 steps each, 1 torch thread
    python benchmarks/grpo_vs_trl.py --steps 12 --threads 2

Both sides train the same tiny Qwen2 chat model (built locally, hidden 128) on the same prompts
(Search-v0 procedural questions, prompt = the question only, one turn), scored by the same scorer
(Search-v0's exact match, called through the env in both), with G = 8 completions per prompt,
8 prompts per step, at most 32 new tokens at T = 1, AdamW lr 1e-5, no KL (so neither loads a
reference model), token-mean loss over the step, one update per batch, no gradient checkpointing.
Each side runs in its own child process, so peak RSS (ru_maxrss) is its own. Time per step is the
mean over steps after the first (warm-up). The last line is `ratio`: ours / TRL.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV_KWARGS = {"max_turns": 1, "hops": 1, "prompt_template": "{question}"}
G, PROMPTS, NEW_TOKENS, LR = 8, 8, 32, 1e-5


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(model: str, steps: int, out: str) -> dict:
    from toolgym.trainers.config_io import load_config
    from toolgym.trainers.loop import GRPOTrainer

    config = load_config(
        None,
        [
            f"model={model}",
            f"output_dir={out}",
            "env_id=Search-v0",
            f"env_kwargs={json.dumps(ENV_KWARGS)}",
            f"num_generations={G}",
            f"prompts_per_step={PROMPTS}",
            f"max_new_tokens={NEW_TOKENS}",
            "max_episode_tokens=256",
            f"learning_rate={LR}",
            f"total_steps={steps}",
            f"micro_batch_size={G * PROMPTS}",
            f"num_envs={G * PROMPTS}",
            "progress_bar=false",
        ],
    )
    trainer = GRPOTrainer(config)
    history = trainer.train()
    trainer.close()

    def mean_after_first(key: str) -> float:
        values = [row[key] for row in history][1:]
        return sum(values) / max(len(values), 1)

    return {
        "time_per_step": mean_after_first("perf/time_per_step"),
        "gen": mean_after_first("timing_s/gen"),
        "update": mean_after_first("timing_s/update"),
        "steps": len(history),
    }


def run_trl(model: str, steps: int, out: str) -> dict:
    import gymnasium as gym
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    import toolgym  # noqa: F401

    env = gym.make("Search-v0", **ENV_KWARGS)
    rows = []
    for index in range(steps * PROMPTS):
        messages, _ = env.reset(seed=index, options={"index": index})
        rows.append({"prompt": messages, "task_index": index})

    def exact_match(prompts, completions, task_index, **kwargs):
        rewards = []
        for completion, index in zip(completions, task_index):
            env.reset(seed=index, options={"index": index})
            text = completion[0]["content"] if isinstance(completion, list) else completion
            _, reward, *_ = env.step(text)
            rewards.append(float(reward))
        return rewards

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times, self.started = [], 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter() - self.started)

    tokenizer = AutoTokenizer.from_pretrained(model)
    policy = AutoModelForCausalLM.from_pretrained(model)
    args = GRPOConfig(
        output_dir=out,
        per_device_train_batch_size=G * PROMPTS,
        gradient_accumulation_steps=1,
        num_generations=G,
        max_completion_length=NEW_TOKENS,
        learning_rate=LR,
        lr_scheduler_type="constant",
        beta=0.0,
        loss_type="dapo",
        temperature=1.0,
        max_steps=steps,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        gradient_checkpointing=False,
        use_cpu=True,
        bf16=False,
        dataloader_num_workers=0,
        seed=0,
        shuffle_dataset=False,
    )
    timer = StepTimer()
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=exact_match,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=[timer],
    )
    trainer.train()
    return {"time_per_step": sum(timer.times[1:]) / max(len(timer.times) - 1, 1), "steps": len(timer.times)}


def child(which: str, model: str, steps: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as out:
        result = (run_ours if which == "ours" else run_trl)(model, steps, out)
    result["peak_rss_mib"] = peak_rss_mib()
    print("RESULT " + json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", choices=["ours", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.model, args.steps, args.threads)
        return 0
    from toolgym.agents.tiny import make_tiny_model

    with tempfile.TemporaryDirectory() as folder:
        model = str(make_tiny_model(Path(folder) / "tiny", hidden_size=128, seed=0))
        results = {}
        for which in ("ours", "trl"):
            command = [sys.executable, __file__, "--child", which, "--model", model]
            command += ["--steps", str(args.steps), "--threads", str(args.threads)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            results[which] = json.loads(line[len("RESULT ") :])
    ours, trl = results["ours"], results["trl"]
    print(f"{'':18}{'toolgym':>12}{'trl 1.16':>12}")
    print(f"{'time per step (s)':18}{ours['time_per_step']:12.3f}{trl['time_per_step']:12.3f}")
    print(f"{'peak RSS (MiB)':18}{ours['peak_rss_mib']:12.0f}{trl['peak_rss_mib']:12.0f}")
    print(f"toolgym step split: generation {ours['gen']:.3f} s, update {ours['update']:.3f} s")
    time_ratio = ours["time_per_step"] / trl["time_per_step"]
    memory_ratio = ours["peak_rss_mib"] / trl["peak_rss_mib"]
    print(
        f"ratio time_per_step {time_ratio:.2f}x  peak_rss {memory_ratio:.2f}x  (toolgym / trl; goals <= 0.5 and <= 1.0)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
