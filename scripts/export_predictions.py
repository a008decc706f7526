"""Commit the evidence of the results tables made before `results.save_table` existed: each
table's recipe, and the predictions of its cells found under $COTLIB_RUNS (the tables
themselves are left as they are; `python -m cotlib rebuild` checks them)."""
from cotlib import experiments, results

DEFAULT, FULL = experiments.get_profile("default"), experiments.get_profile("full")
SOURCES = [("last_letter_concatenation", "esc:gpt-3.5-turbo", 4),
           ("date_understanding", "mot:gpt-3.5-turbo-cot1", 4),
           ("svamp", "mcc-kd:gpt-3.5-turbo", 1),
           ("multiarith", "run:qwen2.5-coder-1.5b/zs_cot_T0.7_max256_ans32_seed0", 1)]
TABLES = [("main_default.csv", "main_table", DEFAULT, True, {}),
          ("main_full.csv", "main_table", FULL, True, {}),
          ("teacher_sources_default.csv", "source_table", DEFAULT, False, {"cells": SOURCES})]

for name, builder, profile, index, args in TABLES:
    missing = results.save_evidence(results.RESULTS / name, builder, profile, index, **args)
    print(f"{name}: {len(missing)} cell(s) without predictions" + (f": {', '.join(missing)}"
                                                                   if missing else ""))
