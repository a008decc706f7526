"""Train the tiny student on real coin-flip rationales; save its weights (used by tests).

python tests/train_tiny.py OUT_DIR [--batch-size B] [--grad-accum A] [--steps-sleep S]
Works under `torchrun --nproc_per_node N` (Accelerator reads its environment).
"""
import argparse
import time
from pathlib import Path

import torch
from accelerate import PartialState

from cotlib.curation import curate
from cotlib.students import TrainConfig, tiny_student, train
from cotlib.tasks import get_task
from cotlib.teachers import recorded

parser = argparse.ArgumentParser()
parser.add_argument("out", type=Path)
parser.add_argument("--batch-size", type=int, default=4)
parser.add_argument("--grad-accum", type=int, default=1)
parser.add_argument("--sleep", type=float, default=0.0, help="seconds per logged step (kill window)")
args = parser.parse_args()

task = get_task("coin_flip")
samples = curate(task, recorded(task), task.split_indices()["train"])[:32]
model, tokenizer = tiny_student(seed=0)
config = TrainConfig(epochs=2, batch_size=args.batch_size, grad_accum=args.grad_accum,
                     bf16=False, checkpoint_every=2, learning_rate=1e-3, freeze_embeddings=False)
log = (lambda message: (print(message, flush=True), time.sleep(args.sleep))) if args.sleep else print
result = train(model, tokenizer, samples, config, args.out, log=log)
state = PartialState()
if state.is_main_process:
    torch.save(result["model"].state_dict(), args.out / "final.pt")
    print(state.distributed_type.value, state.num_processes, "done", result["step"], flush=True)
