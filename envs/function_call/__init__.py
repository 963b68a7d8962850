"""FunctionCall-v0: BFCL single-turn questions (AST-checked) and procedural multi-turn tool worlds.

`bfcl_data` reads BFCL files, `bfcl_checker` scores an answer, `bfcl_scores` aggregates results
the way BFCL's leaderboard does, `world` / `world_tools` generate and run the tool worlds, and
`env.FunctionCallEnv` ties them into a Gymnasium env.
"""
