#!/usr/bin/env python3
"""Reads the index.json of each Autobahn pass and fails unless every case is strict.

Strict means `behavior` and `behaviorClose` are both OK. The only cases allowed
to differ are listed in expected.json (with their expected outcome), each
explained in NOTES.md. NON-STRICT is a failure. The cases run must be
exactly the cases expected, id for id, so a pass that silently ran nothing,
or ran a different selection of the same size, cannot look green.

usage: check.py PASS_DIR...   (each PASS_DIR holds an index.json)

The expected ids come from expected.json's case_groups: the suite's cases
(kosoku 0.1.0 runs Autobahn's own case files), a group and its number of
cases, "6.4": 4 standing for 6.4.1 to 6.4.4. A full pass runs all of them
but those matching `exclude`; a PASS_DIR written `quick:DIR` is a quick
pass, run without the cases in quick_exclude as well (most
permessage-deflate groups); one written `board:DIR` ran on the emulated
microcontroller, without board_exclude (the groups of megabytes, too much
for its serial line, and permessage-deflate, not built there yet), and
one written `board_quick:DIR` without board_quick_exclude as well (the
64 KiB messages, seconds each on the line). cases_run and each
KIND_cases_run are the sizes of the selections, checked against
case_groups here so they cannot drift apart.
"""
import json
import sys
from fnmatch import fnmatchcase
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


def id_key(case):
    """Sorts ids the suite's way (6.10 after 6.9); any id, even a malformed one."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in case.split(".")]


def case_ids(expected, kind):
    """The ids a pass of `kind` ("", "quick", "board" or "board_quick")
    must run: every case but the excluded ones."""
    ids = {
        f"{group}.{n}"
        for group, count in expected["case_groups"].items()
        for n in range(1, count + 1)
    }
    globs = list(expected["exclude"])
    if kind == "board_quick":
        globs += expected["board_exclude"]
    if kind:
        globs += expected[f"{kind}_exclude"]
    return {case for case in ids if not any(fnmatchcase(case, glob) for glob in globs)}


def spans(ids):
    """The ids in order, a run of consecutive cases of one group as first-last."""
    runs = []  # [group, first, last]
    for case in sorted(ids, key=id_key):
        group, _, n = case.rpartition(".")
        if n.isdigit() and runs and runs[-1][0] == group and runs[-1][2] == int(n) - 1:
            runs[-1][2] = int(n)
        else:
            runs.append([group, int(n) if n.isdigit() else n, int(n) if n.isdigit() else None])
    return ", ".join(
        f"{g}.{a}-{g}.{b}" if b is not None and b != a else (f"{g}.{a}" if g else str(a))
        for g, a, b in runs
    )


def cases_(n):
    return f"{n} case" if n == 1 else f"{n} cases"


def check(pass_dir, expected, want_ids):
    index = json.loads((pass_dir / "index.json").read_text())
    problems = []
    counts = dict.fromkeys(["ok", "non-strict", "informational", "failed", "unimplemented"], 0)
    if not index:
        problems.append(f"  no agent in index.json, expected {len(want_ids)} cases")
    for agent, cases in index.items():
        missing = want_ids - cases.keys()
        extra = cases.keys() - want_ids
        if missing:
            problems.append(f"  {agent}: {cases_(len(missing))} missing: {spans(missing)}")
        if extra:
            problems.append(f"  {agent}: {cases_(len(extra))} not expected: {spans(extra)}")
        for case, result in cases.items():
            behavior, close = result["behavior"], result["behaviorClose"]
            counts[category(behavior, close)] += 1
            want = expected["exceptions"].get(case, {"behavior": "OK", "behaviorClose": "OK"})
            if (behavior, close) != (want["behavior"], want["behaviorClose"]):
                problems.append(
                    f"  {agent} {case}: behavior {behavior}, close {close}"
                    f" (expected {want['behavior']}, {want['behaviorClose']});"
                    f" see {pass_dir / result['reportfile']}"
                )
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
    selections = {kind: case_ids(expected, kind) for kind in ("", "quick", "board", "board_quick")}
    for kind in selections:
        key = f"{kind}_cases_run" if kind else "cases_run"
        if len(selections[kind]) != expected[key]:
            print(
                f"expected.json: case_groups select {len(selections[kind])} cases"
                f" for a {kind or 'full'} pass, {key} says {expected[key]}"
            )
            return 1
    results = []
    for d in dirs:
        kind, _, path = d.rpartition(":")
        path = Path(path)
        if not (path / "index.json").exists():
            print(f"{path.name}: no index.json: the pass did not finish")
            results.append(False)
            continue
        results.append(check(path, expected, selections[kind]))
    return 0 if results and all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
