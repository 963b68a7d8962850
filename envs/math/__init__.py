"""Math-v0: math word problems and competition math, with an optional calculator tool.

Modules: `readers` (dataset specs and row formats), `world` (the procedural problem generator),
`answers` (final-answer extraction), `scoring` (math-verify in a killable worker process),
`calculator` (the AST-walking calculator tool), `env` (the `MathEnv` gymnasium env).
"""
