"""Generate the example task file examples/tasks/reverse_words.jsonl: reverse a list of words.

Procedural, like the paper's Coin Flip and Last Letter: 300 questions, each a list of 3 to 6
distinct common nouns, seeded, so rerunning writes the same bytes. Free-text answers (the
words in reverse order, compared after dropping case and punctuation).

    python scripts/make_reverse_words.py [--n 300] [--seed 0] [--out examples/tasks]
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

WORDS = """apple river candle tiger window garden bottle pencil mirror rocket
blanket castle dragon forest guitar hammer island jacket kettle ladder lemon magnet
needle orange palace pepper rabbit saddle tunnel violin wallet anchor basket button
carpet cherry dolphin engine feather flower ginger helmet jungle kitten lantern marble
meadow monkey napkin ocean parrot peanut pillow planet pocket puzzle quilt raven ribbon
salmon shadow silver spider spoon statue sugar summer table teapot thunder tomato
towel turtle valley wagon walnut whale winter wizard yogurt zebra bridge camera cookie
desert falcon glove harbor iron jelly koala letter melon nest olive pearl queen robot
sandal""".split()


def question(words: list[str]) -> dict:
    return {"question": f"Reverse the order of this list of words: {', '.join(words)}.",
            "answer": ", ".join(reversed(words))}


def generate(n: int, seed: int) -> list[dict]:
    rng, seen, records = random.Random(seed), set(), []
    while len(records) < n:
        words = rng.sample(WORDS, rng.randint(3, 6))
        if tuple(words) not in seen:
            seen.add(tuple(words))
            records.append({"id": f"reverse-{len(records)}", **question(words)})
    return records


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "examples/tasks")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r) + "\n" for r in generate(args.n, args.seed))
    (args.out / "reverse_words.jsonl").write_text(lines, encoding="utf-8")
    (args.out / "reverse_words.task.json").write_text(
        json.dumps({"answer_type": "text", "title": "Reverse Words", "test_fraction": 0.2,
                    "seed": 0}, indent=1) + "\n", encoding="utf-8")
    print(f"{args.n} questions -> {args.out / 'reverse_words.jsonl'}")


if __name__ == "__main__":
    main()
