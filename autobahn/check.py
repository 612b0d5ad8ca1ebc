#!/usr/bin/env python3
"""Reads the index.json of each Autobahn pass and fails unless every case is strict.

Strict means `behavior` and `behaviorClose` are both OK. The only cases allowed
to differ are listed in expected.json (with their expected outcome), each
explained in NOTES.md. NON-STRICT is a failure. The number of cases run must
match expected.json too, so a pass that silently ran nothing cannot look green.

usage: check.py PASS_DIR...   (each PASS_DIR holds an index.json)

A PASS_DIR written `quick:DIR` is a quick pass, run without the cases in
expected.json's quick_exclude (most permessage-deflate groups); it must
run quick_cases_run cases instead.
"""
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def category(behavior, close):
    both = {behavior, close}
    if both == {"OK"}:
        return "ok"
    if "FAILED" in both or "WRONG CODE" in both or "UNCLEAN" in both:
        return "failed"
    if "UNIMPLEMENTED" in both:
        return "unimplemented"
    if "NON-STRICT" in both:
        return "non-strict"
    if "INFORMATIONAL" in both:
        return "informational"
    return "failed"


def check(pass_dir, expected, cases_run):
    index = json.loads((pass_dir / "index.json").read_text())
    problems = []
    counts = dict.fromkeys(["ok", "non-strict", "informational", "failed", "unimplemented"], 0)
    total = 0
    for agent, cases in index.items():
        for case, result in cases.items():
            total += 1
            behavior, close = result["behavior"], result["behaviorClose"]
            counts[category(behavior, close)] += 1
            want = expected["exceptions"].get(case, {"behavior": "OK", "behaviorClose": "OK"})
            if (behavior, close) != (want["behavior"], want["behaviorClose"]):
                problems.append(
                    f"  {agent} {case}: behavior {behavior}, close {close}"
                    f" (expected {want['behavior']}, {want['behaviorClose']});"
                    f" see {pass_dir / result['reportfile']}"
                )
    if total != cases_run:
        problems.append(f"  {total} cases ran, expected {cases_run}")
    print(
        f"{pass_dir.name}: {counts['ok']} OK, {counts['non-strict']} non-strict,"
        f" {counts['informational']} informational, {counts['failed']} failed,"
        f" {counts['unimplemented']} unimplemented"
    )
    for problem in problems:
        print(problem)
    return not problems


def main(dirs):
    expected = json.loads((HERE / "expected.json").read_text())
    results = []
    for d in dirs:
        quick = d.startswith("quick:")
        path = Path(d.removeprefix("quick:"))
        if not (path / "index.json").exists():
            print(f"{path.name}: no index.json: the pass did not finish")
            results.append(False)
            continue
        cases_run = expected["quick_cases_run" if quick else "cases_run"]
        results.append(check(path, expected, cases_run))
    return 0 if results and all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
