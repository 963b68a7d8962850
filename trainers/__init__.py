"""GRPO training for tool-using agents (`toolgym train`).

- `config.GRPOConfig`: every knob, documented where it is defined; `config_io.load_config` reads YAML
  plus `key=value` overrides and refuses configs that cannot work.
- `objective`: the formulas (advantages, ratios, clipping, KL, rollout correction, aggregation).
- `grpo`: the objective as a loss over micro-batches and one optimizer step.
- `loop.GRPOTrainer`: rollouts, shaping, dynamic sampling, updates, evaluation, checkpoints.
- `sft`: the supervised warm-up; `plugins`: the hook points and the shipped plug-ins.

Importing this package loads nothing heavy; torch and transformers load with the modules above.
"""
