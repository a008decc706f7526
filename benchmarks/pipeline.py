"""Wall time of a profile (`make demo` runs `default`), per task and stage, from its runs.

python benchmarks/pipeline.py [--profile default]
Reads the finished cells under runs/ (training and evaluation seconds are recorded by
`cotlib run`); cells not yet run are listed as missing. To time from scratch, point
COTLIB_RUNS at an empty directory and run `time make demo` or `python -m cotlib run`.
"""
import argparse

import pandas as pd

from cotlib.experiments import finished, get_profile, has_cell, run_dir
from cotlib.tasks import get_task


def stage_times(profile_name: str) -> pd.DataFrame:
    profile = get_profile(profile_name)
    rows = []
    for task in profile.tasks:
        for method in profile.methods:
            if not has_cell(get_task(task), method):
                continue
            metrics = finished(run_dir(profile, task, method))
            if not metrics:
                rows.append({"task": task, "method": method, "status": "missing"})
                continue
            rows.append({"task": task, "method": method, "status": "done",
                         "train_min": metrics.get("seconds", 0) / 60,
                         "eval_min": metrics.get("eval_seconds", 0) / 60,
                         "train_tokens/s": metrics.get("tokens", 0) / metrics["seconds"]
                         if metrics.get("seconds") else None,
                         "accuracy": metrics["accuracy"]})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="default")
    table = stage_times(parser.parse_args().profile)
    print(table.round(2).to_string(index=False))
    done = table[table.status == "done"]
    print(f"\n{len(done)}/{len(table)} cells done; training {done.train_min.sum():.1f} min, "
          f"evaluation {done.eval_min.sum():.1f} min, total {done.train_min.sum() + done.eval_min.sum():.1f} min")
    print(done.groupby("method")[["train_min", "eval_min"]].sum().round(1).to_string())


if __name__ == "__main__":
    main()
