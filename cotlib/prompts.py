"""Prompts of step 1: Zero-shot-CoT (two stages), few-shot-CoT and plain zero-shot.

A `Prompt` is a user turn (`Q: <question>`) and the opening of the assistant's answer
(`A: Let's think step by step.`); it renders as one completion-style text, as chat
messages, or in ChatML for instruction-tuned models served by a completions endpoint.
"""
from __future__ import annotations

from dataclasses import dataclass

from .data import CotlibError, read_json
from .tasks import Task

STEP_BY_STEP = "Let's think step by step."
METHODS = ("zs_cot", "fs_cot", "zs")  # names of the reasoning-teacher completion keys


@dataclass(frozen=True)
class Prompt:
    user: str  # "Q: <question>" (few-shot: the exemplars, then the question)
    assistant: str  # how the answer opens; the teacher continues this text

    def text(self) -> str:
        """Completion-style: the paper's `Q: <q>\\nA: Let's think step by step.`"""
        return f"{self.user}\n{self.assistant}"

    def messages(self, prefill: bool = False) -> list[dict[str, str]]:
        """Chat-style. Without prefill the whole text is the user turn, since most chat
        APIs cannot continue an assistant turn; with it, the answer opening is one."""
        if prefill:
            return [{"role": "user", "content": self.user},
                    {"role": "assistant", "content": self.assistant}]
        return [{"role": "user", "content": self.text()}]

    def chatml(self) -> str:
        """ChatML (Qwen and others) with the assistant turn left open: raw Zero-shot-CoT
        text makes small instruction-tuned models append code blocks or repeat themselves."""
        return (f"<|im_start|>user\n{self.user}<|im_end|>\n"
                f"<|im_start|>assistant\n{self.assistant}")

    def render(self, template: str) -> str:
        if template == "plain":
            return self.text()
        if template == "chatml":
            return self.chatml()
        raise CotlibError(f"unknown prompt template {template!r}; choose plain or chatml")


STOP = {"plain": ["\nQ:"], "chatml": ["<|im_end|>", "<|im_start|>"]}


def zero_shot_cot(question: str) -> Prompt:
    """Stage 1 of Zero-shot-CoT (Kojima et al. 2022): asks for the rationale."""
    return Prompt(f"Q: {question}", f"A: {STEP_BY_STEP}")


def answer_prompt(reasoning: Prompt, rationale: str, trigger: str) -> Prompt:
    """Stage 2: the stage-1 text, the rationale, then the task's answer trigger."""
    return Prompt(reasoning.user, f"{reasoning.assistant} {rationale.strip()}\n{trigger}")


def zero_shot(question: str, trigger: str) -> Prompt:
    """Plain zero-shot (no reasoning): "Therefore, the answer is" -> "The answer is"."""
    opening = trigger.removeprefix("Therefore, ")
    return Prompt(f"Q: {question}", f"A: {opening[:1].upper()}{opening[1:]}")


def few_shot_exemplars(task: Task) -> str:
    """The few-shot-CoT exemplars of the reasoning-teacher repo (Wei et al. 2022)."""
    prompts = read_json("reasoning_teacher/few_shot_cot_prompts.json")
    if task.name not in prompts:
        raise CotlibError(f"few_shot_cot_prompts.json has no exemplars for task {task.name}; "
                          f"it has {', '.join(prompts)}")
    return prompts[task.name]["prompt"].strip()


def has_few_shot(task: Task) -> bool:
    return task.name in read_json("reasoning_teacher/few_shot_cot_prompts.json")


def few_shot_cot(task: Task, question: str) -> Prompt:
    """Few-shot-CoT: the exemplars, then the question; the answer follows `A:`."""
    return Prompt(f"{few_shot_exemplars(task)}\nQ: {question}", "A:")


def reasoning_prompt(method: str, task: Task, question: str) -> Prompt:
    """The first (or only) prompt of `method` for one question."""
    if method == "zs_cot":
        return zero_shot_cot(question)
    if method == "fs_cot":
        return few_shot_cot(task, question)
    if method == "zs":
        return zero_shot(question, task.trigger)
    raise CotlibError(f"unknown prompting method {method!r}; choose from {', '.join(METHODS)}")
