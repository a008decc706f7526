"""Re-count the completion tokens of local-teacher records made with n > 1 requests.

Before commit 05dce8b the `local` teacher asked llama-server for D rationales in one
request (`n`=D). The server returns D choices, but its `usage` counts one choice's tokens,
so those records undercount their tokens about D-fold. This script counts them again with
the server's own tokenizer (`POST /tokenize`): the rationale's and the answer's tokens plus
one end token per stage. Records finished at or after `--before` (Unix time) are kept.

    python scripts/recount_tokens.py STORE --before 1795670882          # dry run
    python scripts/recount_tokens.py STORE --before 1795670882 --write  # rewrite STORE

The same counting applied to records the server counted correctly is printed beside, as
the method's error. Stop the run that writes STORE first.
"""
import argparse
import json
import urllib.request
from pathlib import Path

from cotlib.store import export_jsonl, load

END_TOKENS = 2  # one end token per stage (rationale, answer)


def tokenizer(url: str):
    def count(text: str) -> int:
        request = urllib.request.Request(f"{url}/tokenize", json.dumps({"content": text}).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return len(json.load(response)["tokens"])
    return count


def recount(record, count) -> int:
    return count(record.rationale) + count(record.answer_text) + END_TOKENS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--before", type=float, required=True,
                        help="recount records finished before this Unix time")
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--write", action="store_true", help="rewrite the store atomically")
    args = parser.parse_args()
    loaded = load(args.store)  # read only: a dry run writes nothing
    if loaded.problems:
        raise SystemExit(f"{args.store}: {loaded.problems[0]}: fix the store first")
    count, records = tokenizer(args.url), list(loaded.records.values())
    stale = [r for r in records if r.status == "ok" and 0 < r.finished < args.before]
    fresh = [r for r in records if r.status == "ok" and r.finished >= args.before]
    reported = sum(r.completion_tokens for r in fresh)
    if fresh:
        error = sum(recount(r, count) for r in fresh) / reported - 1
        print(f"method error on {len(fresh)} correctly counted records: {100 * error:+.2f} %")
    before = sum(r.completion_tokens for r in stale)
    for r in stale:
        r.completion_tokens = recount(r, count)
    print(f"{len(stale)} records: {before:,} -> {sum(r.completion_tokens for r in stale):,} tokens")
    if args.write:
        export_jsonl(records, args.store)
        print(f"rewrote {args.store}")


if __name__ == "__main__":
    main()
