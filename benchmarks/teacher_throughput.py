"""Completions/s of a local teacher: servers, slots and requests in flight, as ratios.

    python benchmarks/teacher_throughput.py [--model smollm2-135m] [--questions 16] [--parallel 4]

Runs Zero-shot-CoT (both stages) on the first train questions of MultiArith, each way into a
fresh temporary store, against a server started on a free port: llama-cpp-python's server
with 1 and then `--parallel` requests in flight (it has no parallel slots: it serves one
request at a time), then llama.cpp's llama-server with `--parallel` slots (continuous
batching), 1 and `--parallel` requests in flight (skipped if it is not built).
"""
from __future__ import annotations

import argparse
import socket
import tempfile
import time
from pathlib import Path

from cotlib.data import CotlibError
from cotlib.serve import llama_server, start_server
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
    p.add_argument("--parallel", type=int, default=4, help="slots and requests in flight")
    args = p.parse_args()
    params = GenerationParams(max_tokens=args.max_tokens, answer_max_tokens=8)
    servers = {"llama-cpp-python": 1, f"llama-server --parallel {args.parallel}": args.parallel}
    try:
        llama_server()
    except CotlibError as e:
        print(f"llama-server skipped: {e}")
        del servers[f"llama-server --parallel {args.parallel}"]
    base = None
    for name, slots in servers.items():
        server = start_server(args.model, port=free_port(), threads=args.threads, parallel=slots)
        try:
            completions_per_second(server.base_url, args.model, 1, 2, params)  # warm up
            for workers in (1, args.parallel):
                rate, tokens = completions_per_second(server.base_url, args.model, workers,
                                                      args.questions, params)
                base = base or rate
                print(f"{name:<28} {workers} in flight: {rate:.3f} completions/s "
                      f"{rate / base:5.2f}x ({tokens} completion tokens)", flush=True)
        finally:
            server.stop()
    print(f"({args.model}, {args.questions} questions, {args.threads} threads; ratios to the "
          "first line)")


if __name__ == "__main__":
    main()
