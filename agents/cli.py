"""`toolgym serve model`: put any ToolGym agent behind an OpenAI-compatible endpoint.

Only argparse is imported at module level; the server stack loads inside the handler.
"""

from __future__ import annotations

import argparse

from toolgym.cli_help import HelpFormatter

SERVE_MODEL_DESCRIPTION = """\
Serve a ToolGym agent as an OpenAI-compatible chat-completions endpoint:
  POST /v1/chat/completions   (messages, tools, temperature, top_p, max_tokens, stop, seed; n=1, no streaming)
  GET  /v1/models             the one served model name
  GET  /health

Requests arriving together are answered by one batched agent call, so a local model generates
them as one batch. With `tools` in the request, Hermes <tool_call> blocks in the model's text come
back as native `tool_calls`. The server binds 127.0.0.1 unless --host says otherwise; it has no
authentication, so do not expose it to a network you do not trust.
"""

SERVE_MODEL_EPILOG = """\
examples:
  toolgym serve model --agent hf:./checkpoints/qwen-0.5b --model-name qwen
  toolgym serve model --agent py:my_pkg.agents:solve --port 8002

then, in another shell, benchmark it like any endpoint:
  toolgym eval --env Search-v0 --agent "openai:http://127.0.0.1:8001/v1#qwen" ...
  curl -s http://127.0.0.1:8001/v1/models
"""


def add_serve_model_command(serve_subparsers: argparse._SubParsersAction) -> None:
    """Add `model` under `toolgym serve`."""
    parser = serve_subparsers.add_parser(
        "model",
        help="serve any agent (hf:, py:, scripted:) as an OpenAI-compatible chat-completions endpoint",
        description=SERVE_MODEL_DESCRIPTION,
        epilog=SERVE_MODEL_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--agent", required=True, help="agent spec: hf:<path>, py:<module>:<function>, scripted:<name>")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (keep 127.0.0.1 unless you must share)")
    parser.add_argument("--port", type=int, default=8001, help="TCP port")
    parser.add_argument(
        "--model-name",
        default=None,
        help="the model name clients ask for (default: the hf: folder name, else the spec)",
    )
    parser.add_argument(
        "--batch-wait-ms", type=float, default=10.0, help="how long to wait for more requests before calling the agent"
    )
    parser.add_argument("--max-batch-size", type=int, default=32, help="most requests answered by one agent call")
    parser.add_argument("--max-pending", type=int, default=1024, help="requests queued at most (503 beyond)")
    parser.add_argument("--max-tokens-limit", type=int, default=8192, help="largest max_tokens a request may ask for")
    parser.add_argument("--request-timeout", type=float, default=600.0, help="seconds before a request gets a 504")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.set_defaults(handler=serve_model)


def serve_model(args: argparse.Namespace) -> int:
    """Build the agent, then run the server in the foreground until interrupted."""
    import sys

    from .model_server_protocol import ServerLimits

    if (
        not 0 < args.port < 65536
        or args.max_batch_size < 1
        or args.max_pending < 1
        or args.batch_wait_ms < 0
        or args.max_tokens_limit < 1
    ):
        print(
            "toolgym serve model: --port, --max-batch-size, --max-pending, --batch-wait-ms or --max-tokens-limit "
            "is out of range",
            file=sys.stderr,
        )
        return 2
    try:
        import uvicorn

        from .model_server import create_app, default_model_name
        from .specs import make_agent

        agent = make_agent(args.agent)
        app = create_app(
            agent,
            args.model_name or default_model_name(args.agent),
            ServerLimits(
                batch_wait_ms=args.batch_wait_ms,
                max_batch_size=args.max_batch_size,
                max_pending=args.max_pending,
                max_tokens_limit=args.max_tokens_limit,
                default_max_tokens=min(512, args.max_tokens_limit),
                request_timeout_s=args.request_timeout,
            ),
        )
    except (ImportError, ValueError, OSError) as exc:
        print(f"toolgym serve model: {exc}", file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"toolgym serve model: warning: binding {args.host}; the server has no authentication", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
