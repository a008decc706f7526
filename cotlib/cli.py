"""Command line: `python -m cotlib <step> ...`; each step is one call into cotlib."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from .data import PROJECT_ROOT, CotlibError, cache_dir, download, runs_root


def cmd_tasks(args: argparse.Namespace) -> None:
    from .teachers.report import task_table  # pandas is slow to import; only when asked
    table = task_table()[["type", "train", "test", "teacher_train", "teacher_test"]]
    print(table.round(2).to_string(na_rep="-"))
    print("\nteacher: text-davinci-002 Zero-shot-CoT (recorded), accuracy % with fair "
          "comparison (numbers equal as numbers, last letters compared as letters)")


def cmd_download(args: argparse.Namespace) -> None:
    fetched = download(args.dest, mirror=args.mirror, only=args.only)
    print(f"{len(fetched)} file(s) downloaded into {args.dest}; the rest were already there")


def cmd_generate(args: argparse.Namespace) -> None:
    from . import teachers  # noqa: PLC0415  (heavy imports only when asked)
    from .store import export_completion_dataset  # noqa: PLC0415
    from .tasks import get_task  # noqa: PLC0415
    params = teachers.GenerationParams(args.method, args.D, args.T, args.max_tokens,
                                       args.answer_max_tokens, args.seed)
    tasks = [get_task(name) for name in _task_names(args.task, args)]
    teacher = teachers.make_teacher(args.teacher, args.model, **_teacher_options(args))
    store_dir = args.store_dir or runs_root() / "teachers"  # where `run` and sources look too
    runs = teachers.run_tasks(teacher, tasks, params, store_dir, args.out or store_dir,
                              args.part, args.split, args.limit,
                              teachers.Budget(args.max_cost, args.max_total_tokens),
                              progress=not args.no_progress)
    if args.upstream_json:
        for task, records in runs.items():
            path = teachers.run_file(args.out or store_dir, records[0].teacher, params, task,
                                     args.split, args.part, ".completion_dataset.json")
            export_completion_dataset(records, path, records[0].teacher, params.method)


def _task_names(names: list[str] | None, args: argparse.Namespace) -> list[str]:
    """The tasks asked for by name, else those of --task-file."""
    if names:
        return names
    files = [Path(p).name.removesuffix(".jsonl") for p in args.task_file or []]
    if not files:
        raise CotlibError(f"{args.step}: name a task (--task) or give a --task-file")
    return files


def _teacher_options(args: argparse.Namespace) -> dict:
    if args.teacher == "hf":
        return {"batch_size": args.batch_size, "template": args.template or "plain"}
    if args.teacher not in ("openai", "local"):
        return {}
    options = dict(workers=args.concurrency, timeout=args.timeout, retries=args.retries,
                   api=args.api)
    if args.teacher == "local":
        return {**options, "base_url": args.base_url or "http://127.0.0.1:8080/v1"}
    return {**options, "base_url": args.base_url, "key_env": args.api_key_env,
            "template": args.template or "plain", "price": (args.price_in, args.price_out)}


def cmd_serve(args: argparse.Namespace) -> None:
    from .serve import model_path, start_server  # noqa: PLC0415
    if args.assemble_only:
        print(model_path(args.model))
        return
    server = start_server(args.model, args.port, args.threads, args.n_ctx,
                          parallel=args.parallel)
    print(f"serving {args.model} at {server.base_url} (Ctrl-C stops it)", flush=True)
    # `kill PID` must not orphan the server: turn SIGTERM into the Ctrl-C path
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def task_files_parser() -> argparse.ArgumentParser:
    """--task-file, shared by every step that takes tasks."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--task-file", type=Path, action="append",
                   help="a task file <name>.jsonl (with <name>.task.json beside it), known as "
                        "<name> like a built-in task; repeatable (or: a folder in $COTLIB_TASKS)")
    return p


def teacher_arguments(g: argparse.ArgumentParser) -> None:
    """Who the teacher is and how it is asked (generate and distil)."""
    g.add_argument("--teacher", default="recorded", help="recorded, openai, local or hf")
    g.add_argument("--model", default="", help="model name (openai), local model name "
                   "(local: qwen2.5-coder-1.5b, ...) or directory (hf)")
    g.add_argument("--D", type=int, default=1, help="degree of diverse reasoning")
    g.add_argument("--T", type=float, default=0.0, help="sampling temperature")
    g.add_argument("--method", default="zs_cot", help="zs_cot, fs_cot or zs")
    g.add_argument("--max-tokens", type=int, default=128, help="rationale token cap")
    g.add_argument("--answer-max-tokens", type=int, default=32)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://host:8000/v1")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY",
                   help="name of the environment variable holding the key")
    g.add_argument("--api", default="completions", choices=["completions", "chat"])
    g.add_argument("--template", choices=["plain", "chatml"],
                   help="prompt rendering for the completions API (local: the model's)")
    g.add_argument("--concurrency", type=int, default=4)
    g.add_argument("--timeout", type=float, default=120.0)
    g.add_argument("--retries", type=int, default=5)
    g.add_argument("--price-in", type=float, default=0.0, help="USD per 1M prompt tokens")
    g.add_argument("--price-out", type=float, default=0.0, help="USD per 1M completion tokens")
    g.add_argument("--max-cost", type=float, help="budget in USD: stop cleanly when reached")
    g.add_argument("--max-total-tokens", type=int, help="budget in tokens")
    g.add_argument("--batch-size", type=int, default=8, help="hf: questions per batch")
    g.add_argument("--no-progress", action="store_true")


def add_teacher_steps(steps) -> None:
    """`generate` (step 1: rationales from a teacher) and `serve` (a local teacher)."""
    g = steps.add_parser("generate", help="step 1: ask a teacher for Zero-shot-CoT rationales",
                         parents=[task_files_parser()])
    g.add_argument("--task", nargs="+", help="task names (default: those of --task-file)")
    g.add_argument("--split", default="default")
    g.add_argument("--part", default="train")
    g.add_argument("--limit", type=int, help="only the first N questions of the part")
    teacher_arguments(g)
    g.add_argument("--store-dir", type=Path,
                   help="durable JSONL stores (default: $COTLIB_RUNS/teachers, else runs/teachers "
                        "in the project)")
    g.add_argument("--out", type=Path, help="where consolidated files go (default: store dir)")
    g.add_argument("--upstream-json", action="store_true",
                   help="also write reasoning-teacher CompletionDataset JSON")
    g.set_defaults(run=cmd_generate)
    s = steps.add_parser("serve", help="serve a local teacher on 127.0.0.1 (llama.cpp)")
    s.add_argument("--model", default="qwen2.5-coder-1.5b")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--threads", type=int)
    s.add_argument("--n-ctx", type=int, default=2048, help="context per slot")
    s.add_argument("--parallel", type=int, default=1, help="slots (>1: llama.cpp's llama-server,"
                   " continuous batching; `make llama-server` builds it)")
    s.add_argument("--assemble-only", action="store_true",
                   help="only assemble and cache the GGUF, print its path")
    s.set_defaults(run=cmd_serve)


def cmd_run(args: argparse.Namespace) -> None:
    from .experiments import get_profile  # noqa: PLC0415
    from .tables import main_table  # noqa: PLC0415
    names = _task_names(args.tasks, args) if args.tasks or args.task_file else None
    profile = get_profile(args.profile, tasks=names, epochs=args.epochs,
                          learning_rate=args.learning_rate, test_limit=args.test_limit,
                          validation_size=args.validation_size, teacher=args.teacher,
                          degree=args.D, distinct=args.distinct or None,
                          answer_format=args.answer_format,
                          task_vocab=args.task_vocab,
                          schedule=args.schedule, keep=args.keep,
                          test_every_epoch=True if args.test_every_epoch else None,
                          consistent_choices=True if args.consistent_choices else None)
    table = main_table(profile, tuple(args.methods) if args.methods else None)
    print(table.round(2).to_string(na_rep="-"))


def add_student_steps(steps) -> None:
    r = steps.add_parser("run", help="steps 2-3 and the main table: curate, fine-tune, evaluate "
                                     "(finished runs under runs/ are reused)",
                         parents=[task_files_parser()])
    r.add_argument("--profile", default="default", help="smoke | default | full")
    r.add_argument("--tasks", nargs="*", help="task names (default: those of --task-file, else "
                                              "the profile's)")
    r.add_argument("--methods", nargs="*", help="fine_tune_cot vanilla zero_shot zero_shot_cot "
                                                "few_shot_cot (default: all)")
    r.add_argument("--epochs", type=int)
    r.add_argument("--learning-rate", type=float)
    r.add_argument("--validation-size", type=int,
                   help="hold out the last N train questions; their accuracy lands in metrics.json "
                        "to compare hyperparameters without touching test")
    r.add_argument("--test-limit", type=int, help="first N test questions per task")
    r.add_argument("--teacher", help="teacher source for Fine-tune-CoT (default: recorded; "
                   "`python -m cotlib sources` lists them)")
    r.add_argument("--D", type=int, help="degree: the first D completions per train question")
    r.add_argument("--distinct", action="store_true",
                   help="drop exact duplicate rationales of a question (the paper keeps them)")
    r.add_argument("--answer-format", choices=["paper", "copyable"],
                   help="after `-->`: the answer (paper) or what the student can copy: Last "
                        "Letter's letters spaced out, a choice's text then its letter")
    r.add_argument("--task-vocab", action=argparse.BooleanOptionalAction,
                   help="cut the Fine-tune-CoT student's head to the task's tokens (faster; a "
                        "departure from the paper; on in the default and full profiles)")
    r.add_argument("--schedule", choices=["linear", "constant"],
                   help="learning rate: warm-up and linear decay, or constant (the paper's open students)")
    r.add_argument("--keep", choices=["last", "best"],
                   help="the student of the last epoch, or of the epoch best on validation")
    r.add_argument("--test-every-epoch", action="store_true",
                   help="also score test after every epoch: the paper's best-of-epochs protocol, "
                        "reported beside ours, never used to choose")
    r.add_argument("--consistent-choices", action="store_true",
                   help="drop multiple-choice samples whose rationale concludes another choice "
                        "than their answer (right for a wrong reason; a departure from the paper)")
    r.set_defaults(run=cmd_run)
    s = steps.add_parser("sources", help="teacher sources per task: covered train questions, "
                                         "max D, teacher accuracy on our train split",
                         parents=[task_files_parser()])
    s.add_argument("--task", nargs="*", help="only these tasks")
    s.set_defaults(run=cmd_sources)


def cmd_distil(args: argparse.Namespace) -> None:
    from . import teachers  # noqa: PLC0415
    from .distil import distil  # noqa: PLC0415
    from .experiments import get_profile  # noqa: PLC0415
    from .tasks import get_task  # noqa: PLC0415
    names = _task_names([args.task] if args.task else None, args)
    if len(names) != 1:
        raise CotlibError(f"distil takes one task; got {', '.join(names)}")
    task = get_task(names[0])  # a bad task file stops here, before anything is written
    profile = get_profile(args.profile, tasks=[task.name], student=args.student,
                          epochs=args.epochs, learning_rate=args.learning_rate,
                          validation_size=args.validation_size, test_limit=args.test_limit)
    params = teachers.GenerationParams(args.method, args.D, args.T, args.max_tokens,
                                       args.answer_max_tokens, args.seed)
    baselines = tuple(b for b in args.baselines.split(",") if b)
    results = distil(task, profile, args.teacher, args.model, _teacher_options(args), params,
                     baselines, args.out or runs_root() / "distil" / task.name,
                     teachers.Budget(args.max_cost, args.max_total_tokens),
                     progress=not args.no_progress)
    for method, metrics in results.items():
        print(f"{method}: {metrics['accuracy']:.2f} % (95 % CI {metrics['ci_low']:.1f}-"
              f"{metrics['ci_high']:.1f}, n={metrics['n']})")


def add_distil_step(steps) -> None:
    d = steps.add_parser("distil", parents=[task_files_parser()],
                         help="the whole method on one task: teacher rationales on the train "
                              "split, curation, the student, evaluation on test (each step "
                              "reused when done); writes the student with a model card")
    d.add_argument("--task", help="a task name (default: that of --task-file)")
    teacher_arguments(d)
    d.add_argument("--profile", default="default",
                   help="student and training settings: smoke | default | full")
    d.add_argument("--student", help="gemma-3-270m, tiny or a model directory "
                                     "(default: the profile's)")
    d.add_argument("--epochs", type=int)
    d.add_argument("--learning-rate", type=float)
    d.add_argument("--validation-size", type=int, help="hold out the last N train questions")
    d.add_argument("--test-limit", type=int, help="first N test questions")
    d.add_argument("--baselines", default="", help="comma-separated: vanilla, zero_shot, "
                                                   "zero_shot_cot, few_shot_cot (default: none)")
    d.add_argument("--out", type=Path, help="where the student, train.jsonl and results.json go "
                                            "(default: $COTLIB_RUNS/distil/<task>)")
    d.set_defaults(run=cmd_distil)


def cmd_study(args: argparse.Namespace) -> None:
    from . import results, studies  # noqa: PLC0415
    from .experiments import get_profile  # noqa: PLC0415
    profile = get_profile(args.profile, epochs=args.epochs, learning_rate=args.learning_rate)
    options = {"run_missing": not args.plan, "log": (lambda _: None) if args.plan else print}
    if args.study == "diverse":
        builder, chosen = "diverse_table", {"tasks": args.tasks, "budgets": list(args.budget),
                                            "degrees": args.D}
        table = studies.diverse_table(profile, **chosen, **options)
        shown = ["task", "teacher", "budget", "D"]
    else:
        builder, chosen = "teacher_table", {"tasks": args.tasks, "teachers": args.teachers}
        table = studies.teacher_table(profile, **chosen, **options)
        shown = ["task", "teacher", "teacher_train_accuracy"]
    shown += ["train_samples", "optimizer_steps", "validation", "accuracy", "ci_low", "ci_high"]
    if table.empty:
        return print(f"no cell of the {args.study} plan on these tasks, degrees or teachers")
    if args.out:  # with the predictions of its finished cells, so it rebuilds and restores
        results.save_table(table, args.out, builder, profile, index=False, **chosen)
    if args.plan:
        table["seconds_to_run"] = studies.seconds_to_run(table)
        shown.append("seconds_to_run")
    print(table[shown].round(2).to_string(index=False, na_rep="-"))
    if args.plan:
        cells = table.drop_duplicates("cell")
        print(f"still to run: {cells.seconds_to_run.sum() / 3600:.1f} h, estimated from the "
              f"finished cells of each task; not included: the reference cells and "
              f"{cells.seconds_to_run.isna().sum()} cell(s) of tasks with no finished cell")
    ranks = studies.rank_correlation(table) if args.study == "teachers" else []
    if len(ranks):
        print(ranks.round({"spearman": 2, "p_value": 4}).to_string(index=False, na_rep="-"))


def add_study_step(steps) -> None:
    s = steps.add_parser("study", help="notebook 05's studies: diverse reasoning (each D) or "
                         "teachers (each source at D=1); runs missing cells, reuses finished ones")
    s.add_argument("study", choices=["diverse", "teachers"])
    s.add_argument("--profile", default="default", help="smoke | default | full")
    s.add_argument("--tasks", nargs="*", help="tasks of the study's plan (default: all of them)")
    s.add_argument("--epochs", type=int)
    s.add_argument("--learning-rate", type=float)
    s.add_argument("--budget", nargs="+", default=["epochs"], choices=["epochs", "steps"],
                   help="diverse: epochs (every D the profile's epochs, as the paper) and/or "
                        "steps (every D the optimizer steps of D=1)")
    s.add_argument("--D", type=int, nargs="+", help="diverse: only these degrees of the plan")
    s.add_argument("--teachers", nargs="+", help="teachers: only these sources of the plan")
    s.add_argument("--plan", action="store_true",
                   help="train nothing (blank where a cell is missing) and estimate the seconds "
                        "each missing cell takes")
    s.add_argument("--out", type=Path, help="write the table as CSV (with --plan: as far as "
                                             "it is finished)")
    s.set_defaults(run=cmd_study)


def cmd_ablation(args: argparse.Namespace) -> None:
    from .ablations import ablation, run_ablation  # noqa: PLC0415
    for name in args.ablation:
        ablation(name)  # an unknown name: one error line, before anything runs
    for name in args.ablation:
        table = run_ablation(name, args.profile, args.tasks)
        print(f"{name}: {ablation(name).question}\n"
              f"{table.round(2).to_string(index=False, na_rep='-')}")


def add_ablation_step(steps) -> None:
    a = steps.add_parser("ablation", help="notebook 06's ablations: Fine-tune-CoT cells that "
                         "differ in one switch; runs missing cells, saves "
                         "results/<name>_<profile>.csv")
    a.add_argument("ablation", nargs="+", help="answer_format, task_vocabulary, date_ablation "
                   "(cotlib.ablations.ABLATIONS)")
    a.add_argument("--profile", default="default", help="smoke | default | full")
    a.add_argument("--tasks", nargs="*", help="only the cells of these tasks")
    a.set_defaults(run=cmd_ablation)


def cmd_sources(args: argparse.Namespace) -> None:
    from .sources import coverage_table  # noqa: PLC0415
    table = coverage_table(args.task)
    columns = ["source", "task", "teacher", "T", "train_questions", "train_total", "max_D",
               "train_accuracy", "test_dropped", "unmatched"]
    readable = table[table.problem == ""]
    print(readable[columns].round(1).to_string(index=False, na_rep="-"))
    for row in table[table.problem != ""].itertuples():
        print(f"{row.source}: cannot be read: {row.problem}")


def cmd_paper(args: argparse.Namespace) -> None:
    from . import paper  # noqa: PLC0415
    overrides = {name: paper.value(text) for name, text in args.parameter or []}
    paper.run(paper.plan(args.profile, args.notebooks, args.in_place, overrides))


def cmd_figures(args: argparse.Namespace) -> None:
    from .plots import make_figures  # noqa: PLC0415
    written = make_figures(args.results, args.figures, args.only)
    print(f"{len(written)} files in {args.figures}")


def cmd_rebuild(args: argparse.Namespace) -> None:
    from .results import check  # noqa: PLC0415
    status = check(args.results, args.write)
    for table, state in status.items():
        print(f"{table}: {state}")
    if differ := [t for t, s in status.items() if s.startswith("differs")]:
        raise CotlibError(f"{', '.join(differ)} no longer follow from their committed predictions")


def cmd_restore(args: argparse.Namespace) -> None:
    from .results import restore  # noqa: PLC0415
    restored = restore(args.results)
    print(f"{len(restored)} committed cells restored under {runs_root()}")


def add_paper_steps(steps) -> None:
    """`paper` (the notebooks as one batch), `figures` and `rebuild` (from results/)."""
    p = steps.add_parser("paper", help="execute the numbered notebooks in order with papermill")
    p.add_argument("--profile", required=True, help="smoke | default | full")
    p.add_argument("--notebooks", nargs="*", help="only these (e.g. 00 02_curation; default: all)")
    p.add_argument("--in-place", action="store_true", help="overwrite the committed notebooks, "
                   "figures and tables (default: copies under runs/notebooks/<profile>/)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="a notebook parameter (a Python literal, else a string), e.g. -p epochs 4")
    p.set_defaults(run=cmd_paper)
    f = steps.add_parser("figures", help="draw every committed figure from results/ (no training)")
    f.add_argument("--results", type=Path, default=PROJECT_ROOT / "results")
    f.add_argument("--figures", type=Path, default=PROJECT_ROOT / "figures")
    f.add_argument("--only", nargs="*", help="figure names (default: all)")
    f.set_defaults(run=cmd_figures)
    r = steps.add_parser("rebuild", help="rebuild each results table from its committed "
                                         "predictions and compare it with the committed one")
    r.add_argument("--results", type=Path, default=PROJECT_ROOT / "results")
    r.add_argument("--write", action="store_true", help="overwrite a table that differs (after "
                   "a builder gained a column; its predictions are unchanged)")
    r.set_defaults(run=cmd_rebuild)
    s = steps.add_parser("restore", help="put every committed cell back under runs/ (finished "
                                         "cells are reused, not retrained)")
    s.add_argument("--results", type=Path, default=PROJECT_ROOT / "results")
    s.set_defaults(run=cmd_restore)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cotlib", description=__doc__)
    steps = p.add_subparsers(dest="step", required=True)
    steps.add_parser("tasks", help="the 12 tasks and task files: sizes and recorded teacher "
                     "accuracy", parents=[task_files_parser()]).set_defaults(run=cmd_tasks)
    d = steps.add_parser("download", help="fetch the data files at their pinned commits")
    d.add_argument("--dest", type=Path, default=cache_dir() / "data",
                   help="where to put them (default: %(default)s)")
    d.add_argument("--mirror", help="base URL serving the same layout instead of GitHub")
    d.add_argument("--only", nargs="*", help="path prefixes to fetch (default: all)")
    d.set_defaults(run=cmd_download)
    add_teacher_steps(steps)
    add_student_steps(steps)
    add_distil_step(steps)
    add_study_step(steps)
    add_ablation_step(steps)
    add_paper_steps(steps)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if getattr(args, "task_file", None):
            from .tasks import use_task_files  # noqa: PLC0415
            use_task_files(args.task_file)
        args.run(args)
    except CotlibError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
