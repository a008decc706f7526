"""Readers of published teacher outputs (`teacher_samples/` under the data root, see its
README): each turns one file format into the same raw shape, question text and its samples.

A new file of a known format is one line in `PUBLISHED`; `sources` joins, grades and guards.
"""
from __future__ import annotations

import ast
import json
import operator
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .data import CotlibError, data_path


@dataclass(frozen=True)
class Raw:
    """One teacher sample as the file gives it: the answer is free text, a number, a yes/no,
    a date or a choice text (mapped to our letters by `sources`)."""
    question: str
    rationale: str
    answer: str
    sample_index: int | None = None  # our own runs know it: it settles a repeated question text


@dataclass(frozen=True)
class PublishedFile:
    source: str  # the spec users name it by
    format: str  # a key of READERS
    teacher: str
    style: str  # how the teacher was prompted
    temperature: float | None  # None: not stated
    task: str
    path: str  # under teacher_samples/


FINAL = re.compile(r"(?:\b(?:So|Therefore),? )?\b[Tt]he (?:final )?answer is:?")


def split_final(text: str) -> tuple[str, str]:
    """(rationale, answer) at the last "The answer is"; without one, the whole text and ""."""
    found = list(FINAL.finditer(text))
    if not found:
        return text.strip(), ""
    last = found[-1]
    answer = text[last.end():].strip().split("\n")[0].strip().rstrip(".").strip()
    return text[:last.start()].strip(), answer


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CotlibError(f"{path}: cannot read as JSON ({e})") from None


def _jsonl(path: Path) -> list:
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CotlibError(f"{path}: cannot read as JSON Lines ({e})") from None


def read_esc(path: Path) -> list[Raw]:
    """ESC: JSONL, `generated_answer` holds the samples, each ending "The answer is X."."""
    return [Raw(r["question"].removeprefix("Q:").strip(), *split_final(text))
            for r in _jsonl(path) for text in r["generated_answer"]]


def read_mot(path: Path) -> list[Raw]:
    """LLM_MoT_cascade: "Explain: ...\\nA: MM/DD/YYYY"; Llama-2 runs on after its first A: line.
    Without an A: line the whole text is the answer (its first date), as MoT's `results`."""
    raws = []
    for r in _json(path):
        for text in r["generated"]:
            text = text.removeprefix("Explain:").strip()
            rationale, found, rest = text.partition("\nA:")
            raws.append(Raw(r["question"], rationale.strip(),
                            rest.strip().split("\n")[0] if found else text))
    return raws


def read_mcc_kd(path: Path) -> list[Raw]:
    """MCC-KD: `output` holds raw rationales with no answer sentence: the last number."""
    return [Raw(r["instruction"].strip(), text.strip(), _last_number(text))
            for r in _json(path) for text in r["output"]]


def _last_number(text: str) -> str:
    numbers = re.findall(r"-?\d+(?:\.\d+)?", text.replace(",", ""))
    return numbers[-1] if numbers else ""


def read_faithful_cot(path: Path) -> list[Raw]:
    """Faithful-COT: predictions hold an id into data/<DS>/test.jsonl and the completions."""
    dataset = path.parents[2].name  # output_dir/<DS>/test/<model>/predictions.jsonl
    questions = {r["id"]: r["question"] for r in
                 _jsonl(path.parents[4] / "data" / dataset / "test.jsonl")}
    raws = []
    for r in _jsonl(path):
        for text in r.get("completions") or [r["completion"]]:
            rationale, answer = split_final(text)
            if not answer:  # StrategyQA: "Yes, ..." with no answer phrase
                answer = next(iter(re.findall(r"^\W*(yes|no)\b", text, re.I)), "")
            raws.append(Raw(questions[r["id"]], rationale, answer))
    return raws


def read_plan_and_solve(path: Path) -> list[Raw]:
    """Plan-and-Solve: one rationale per question, `pred` from a separate extraction."""
    return [Raw(r["question"], r["chain-of-thought"].strip(),
                "" if r["pred"] is None else str(r["pred"])) for r in _json(path)]


def read_dss(path: Path) -> list[Raw]:
    """distilling-step-by-step: inputs (JSONL) aligned by position with llm/<part>_CoT_<i>.json."""
    inputs = _jsonl(path)
    part = path.stem.rsplit("_", 1)[1]  # svamp_train.json -> train
    chunks = sorted(path.parent.glob(f"llm/{part}_CoT_*.json"),
                    key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    texts = [t for chunk in chunks for t in _json(chunk)]
    if len(texts) != len(inputs):
        raise CotlibError(f"{path}: {len(inputs)} inputs but {len(texts)} rationales in "
                          f"{path.parent / 'llm'}")
    raws = []
    for record, text in zip(inputs, texts):
        rationale, answer = split_final(text.split("\n\nQ:")[0])
        question = record.get("question") or record["input"].replace("\n", " ")
        if "choices" not in record:  # SVAMP: "The answer is (84 / 2)"
            answer = _evaluate(answer)
        raws.append(Raw(question, rationale, re.sub(r"^\([a-e]\)\s*", "", answer)))
    return raws


OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
             ast.Div: operator.truediv, ast.USub: operator.neg}


def _evaluate(expression: str) -> str:
    """The value of an arithmetic expression ("(84 / 2)" -> "42"); "" if it is not one."""
    def value(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            return OPERATORS[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in OPERATORS:
            return OPERATORS[type(node.op)](value(node.operand))
        raise ValueError(node)
    try:
        number = value(ast.parse(expression.replace(",", ""), mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError, TypeError):
        return ""
    return f"{number:g}" if abs(number) < 1e15 else ""


READERS: dict[str, Callable[[Path], list[Raw]]] = {
    "esc": read_esc, "mot": read_mot, "mcc-kd": read_mcc_kd, "faithful-cot": read_faithful_cot,
    "plan-and-solve": read_plan_and_solve, "dss": read_dss}


def _faithful(model: str, folder: str) -> list[PublishedFile]:
    where = {"multiarith": "MultiArith", "svamp": "SVAMP", "strategy_qa": "StrategyQA",
             "date_understanding": "date"}
    return [PublishedFile(f"faithful-cot:{model}", "faithful-cot", model, "few-shot-CoT", 0.0,
                          task, f"Faithful-COT/output_dir/{ds}/test/{folder}/predictions.jsonl")
            for task, ds in where.items()]


def _mot(name: str, teacher: str, folder: str, file: str, t: float | None) -> PublishedFile:
    return PublishedFile(f"mot:{name}", "mot", teacher, "few-shot-CoT", t, "date_understanding",
                         f"LLM_MoT_cascade/{folder}/{file}")


def _pns(task: str, file: str) -> PublishedFile:
    return PublishedFile("plan-and-solve:text-davinci-003", "plan-and-solve", "text-davinci-003",
                         "zero-shot plan-and-solve (PS+)", 0.0, task,
                         f"Plan-and-Solve-Prompting/generated_result/{file}")


PUBLISHED: list[PublishedFile] = [
    PublishedFile("esc:gpt-3.5-turbo", "esc", "gpt-3.5-turbo", "few-shot-CoT", 0.7,
                  "last_letter_concatenation", "ESC/GPT3.5_result/last_letters/T0.7.jsonl"),
    _mot("gpt-3.5-turbo-cot1", "gpt-3.5-turbo", "GPT3_result", "date_cot1.json", None),
    _mot("gpt-3.5-turbo-cot1-t0.4", "gpt-3.5-turbo", "GPT3_result", "date_cot1_t=0.4.json", 0.4),
    _mot("gpt-3.5-turbo-cot1-t0.8", "gpt-3.5-turbo", "GPT3_result", "date_cot1_t=0.8.json", 0.8),
    _mot("gpt-3.5-turbo-cot1-n40", "gpt-3.5-turbo", "GPT3_result", "date_cot1_40.json", None),
    _mot("gpt-3.5-turbo-cot2", "gpt-3.5-turbo", "GPT3_result", "date_cot2.json", None),
    _mot("gpt-3.5-turbo-cot2-t0.4", "gpt-3.5-turbo", "GPT3_result", "date_cot2_t=0.4.json", 0.4),
    _mot("gpt-3.5-turbo-cot2-t0.8", "gpt-3.5-turbo", "GPT3_result", "date_cot2_t=0.8.json", 0.8),
    _mot("gpt-4-cot1", "gpt-4", "GPT4_result", "date_cot1.json", None),
    _mot("gpt-4-greedy", "gpt-4", "GPT4_result", "date_greedy_cot1.json", 0.0),
    _mot("llama-2-13b-cot1", "Llama-2-13B", "llama2_13B_result", "date_cot1.json", None),
    PublishedFile("mcc-kd:gpt-3.5-turbo", "mcc-kd", "gpt-3.5-turbo", "not stated", None, "svamp",
                  "MCC-KD/data/SVAMP/train.json"),
    *_faithful("code-davinci-001", "code001_COT"), *_faithful("code-davinci-002", "code002_COT"),
    *_faithful("text-davinci-002", "text002_COT"), *_faithful("text-davinci-003", "text003_COT"),
    *_faithful("gpt-3.5-turbo", "gpt-3.5-turbo_COT"), *_faithful("gpt-4", "gpt4_COT"),
    PublishedFile("faithful-cot:code-davinci-002-ltm", "faithful-cot", "code-davinci-002",
                  "few-shot least-to-most", 0.4, "date_understanding",
                  "Faithful-COT/output_dir/date/test/code002_LtM_n40/predictions.jsonl"),
    _pns("multiarith", "MultiArith-zero_shot-302-text-davinci-003.json"),
    _pns("addsub", "AddSub-zero_shot-301-text-davinci-003.json"),
    _pns("single_eq", "SingleEq-zeri_shot-301-text-davinci-003.json"),
    _pns("svamp", "SVAMP-zero_shot-307-text-davinci-003.json"),
    _pns("strategy_qa", "StrategyQA-zero_shot-306-text-davinci-003.json"),
    _pns("coin_flip", "coin_flip-zero_shot-304-text-davinci-003.json"),
    _pns("last_letter_concatenation", "last_letters-zero_shot-303-text-davinci-003.json"),
    PublishedFile("dss:palm-540b", "dss", "PaLM-540B", "few-shot-CoT", None, "svamp",
                  "distilling-step-by-step1/datasets/svamp/svamp_train.json"),
    PublishedFile("dss:palm-540b", "dss", "PaLM-540B", "few-shot-CoT", None, "svamp",
                  "distilling-step-by-step1/datasets/svamp/svamp_test.json"),
    PublishedFile("dss:palm-540b", "dss", "PaLM-540B", "few-shot-CoT", None, "commonsense_qa",
                  "distilling-step-by-step1/datasets/cqa/cqa_train.json"),
]


def read_published(file: PublishedFile) -> list[Raw]:
    """The raw samples of one published file; a missing or unreadable file is one clear error."""
    path = data_path(f"teacher_samples/{file.path}")
    try:
        return READERS[file.format](path)
    except (KeyError, TypeError, AttributeError, IndexError) as e:
        raise CotlibError(f"{path}: not a {file.format} file ({type(e).__name__}: {e})") from None
