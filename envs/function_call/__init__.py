"""FunctionCall-v0: BFCL single-turn questions (AST-checked) and procedural multi-turn tool worlds.

`readers` reads BFCL files, `scoring` checks an answer, `bfcl_scores` aggregates results
the way BFCL's leaderboard does, `world` / `world_tools` generate and run the tool worlds, and
`env.FunctionCallEnv` ties them into a Gymnasium env.
"""
