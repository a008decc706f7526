"""Completions/s of a local teacher at concurrency 1 vs 8, printed as a ratio.

    python benchmarks/teacher_throughput.py [--model smollm2-135m] [--questions 16]

Starts llama-cpp-python's OpenAI-compatible server on a free port, runs Zero-shot-CoT (both
stages) on the first train questions of MultiArith with 1 and then 8 requests in flight,
each into a fresh temporary store. llama-cpp-python's server has no parallel slots (it
serves one request at a time), so the ratio shows what concurrency buys against it.
"""
from __future__ import annotations

import argparse
import socket
import tempfile
import time
from pathlib import Path

from cotlib.serve import start_server
from cotlib.store import Store
from cotlib.tasks import get_task
from cotlib.teachers import GenerationParams, generate, local_teacher


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def completions_per_second(url: str, model: str, workers: int, questions: int,
                           params: GenerationParams) -> tuple[float, int]:
    teacher = local_teacher(model, base_url=url, workers=workers, timeout=600)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.monotonic()
        summary = generate(teacher, get_task("multiarith"), Store(Path(tmp) / "s.jsonl"), params,
                           limit=questions, progress=False)
        seconds = time.monotonic() - start
    return summary.done_now / seconds, teacher.usage.completion_tokens


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--questions", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-tokens", type=int, default=64)
    args = p.parse_args()
    params = GenerationParams(max_tokens=args.max_tokens, answer_max_tokens=8)
    server = start_server(args.model, port=free_port(), threads=args.threads)
    try:
        completions_per_second(server.base_url, args.model, 1, 2, params)  # warm up
        rates = {}
        for workers in (1, 8):
            rates[workers], tokens = completions_per_second(
                server.base_url, args.model, workers, args.questions, params)
            print(f"concurrency {workers}: {rates[workers]:.3f} completions/s "
                  f"({tokens} completion tokens)", flush=True)
    finally:
        server.stop()
    print(f"ratio concurrency 8 / 1: {rates[8] / rates[1]:.2f}x ({args.model}, "
          f"{args.questions} questions, {args.threads} threads)")


if __name__ == "__main__":
    main()
