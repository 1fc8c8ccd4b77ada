"""A small mutation run: break a rule on purpose, one place at a time, and see a test fail.

    .venv/bin/python scripts/mutate.py geo/assignment/index.py:covering_rank,assign_points \\
        --tests tests/geo/test_assign.py [--tests ...] [--timeout 120] [--limit 80]

Each target is a module, optionally restricted to some functions (``module:f,g``; methods
by their own name). The mutants are simple and textual, each applied alone to a copy of the
tree in a temporary folder (the working tree is never written):

* comparisons ``==``↔``!=``, ``<``↔``<=``, ``>``↔``>=``; ``+``↔``-``;
* ``and``↔``or``, ``True``↔``False``, ``not x`` → ``x``; an integer constant ``n`` → ``n + 1``;
* in SQL strings: ``<``↔``<=``, ``>``↔``>=``, ``=`` → ``<>``, ``AND`` → ``OR``, ``NOT`` dropped;
* a condition deleted: one operand of an ``and``/``or`` dropped, an ``if`` test made ``False``.

The tests run first on the unmutated copy; tests that already fail there are deselected
(they would "kill" every mutant). A mutant is *killed* when the tests fail or time out, and
*survives* when they pass; survivors are printed with their place for a person to judge
(equivalent, or a missing test). mutmut does not fit this project's tests: they start their
own PostGIS databases and a live server from the repository's root, which mutmut's sandbox
moves. Heavy third-party imports are made once and each run is a fork, so a pure test file
costs about a second per mutant; tests that build databases cost what they cost.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import tokenize
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {".venv", ".git", ".gridwork", "artifacts", ".mypy_cache", ".ruff_cache", ".hypothesis"}
OPS = {"==": "!=", "!=": "==", "<": "<=", "<=": "<", ">": ">=", ">=": ">", "+": "-", "-": "+"}
NAMES = {"and": "or", "or": "and", "True": "False", "False": "True"}
SQL = [(r" < ", " <= "), (r" <= ", " < "), (r" > ", " >= "), (r" >= ", " > ")]
SQL += [(r" = ", " <> "), (r" AND ", " OR "), (r"\bNOT ", "")]


@dataclass(frozen=True)
class Mutant:
    path: str
    line: int
    start: int  # offsets into the module's text
    end: int
    new: str
    what: str


def _offsets(text: str) -> list[int]:
    starts, total = [0], 0
    for line in text.splitlines(keepends=True):
        total += len(line)
        starts.append(total)
    return starts


def _ranges(tree: ast.Module, functions: set[str] | None) -> list[tuple[int, int]]:
    """Line ranges to mutate: the named functions' bodies (docstrings excluded), or all."""
    if not functions:
        return [(1, 10**9)]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in functions:
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body = body[1:] or body
            out.append((body[0].lineno, node.end_lineno or node.lineno))
    missing = functions - {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    if missing:
        sys.exit(f"no function {', '.join(sorted(missing))}")
    return out


def mutants(path: str, functions: set[str] | None) -> list[Mutant]:
    text = (ROOT / path).read_text()
    tree = ast.parse(text)
    ranges = _ranges(tree, functions)
    at = _offsets(text)

    def inside(line: int) -> bool:
        return any(a <= line <= b for a, b in ranges)

    docstrings = {
        n.body[0].value.lineno
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.Module)
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    out: list[Mutant] = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        (line, col), (eline, ecol) = tok.start, tok.end
        if not inside(line):
            continue
        start, end = at[line - 1] + col, at[eline - 1] + ecol
        s = tok.string
        if tok.type == tokenize.OP and s in OPS:
            out.append(Mutant(path, line, start, end, OPS[s], f"{s} -> {OPS[s]}"))
        elif tok.type == tokenize.NAME and s in NAMES:
            out.append(Mutant(path, line, start, end, NAMES[s], f"{s} -> {NAMES[s]}"))
        elif tok.type == tokenize.NAME and s == "not":
            out.append(Mutant(path, line, start, end + 1, "", "not dropped"))
        elif tok.type == tokenize.NUMBER and re.fullmatch(r"\d+", s):
            out.append(Mutant(path, line, start, end, str(int(s) + 1), f"{s} -> {int(s) + 1}"))
        elif tok.type == tokenize.STRING and line not in docstrings:
            for pattern, repl in SQL:
                for hit in re.finditer(pattern, s):
                    new = s[: hit.start()] + hit.expand(repl) + s[hit.end() :]
                    what = f"SQL {hit.group(0).strip()!r} -> {repl.strip()!r}"
                    out.append(Mutant(path, line, start, end, new, what))
    for node in ast.walk(tree):
        if not hasattr(node, "lineno") or not inside(node.lineno):
            continue
        if isinstance(node, ast.BoolOp):
            seg = ast.get_source_segment(text, node)
            for i in range(len(node.values)):
                rest = [
                    ast.get_source_segment(text, v) for v in node.values[:i] + node.values[i + 1 :]
                ]
                op = " and " if isinstance(node.op, ast.And) else " or "
                new = op.join(f"({r})" for r in rest if r is not None)
                s0 = at[node.lineno - 1] + node.col_offset
                e0 = at[(node.end_lineno or node.lineno) - 1] + (node.end_col_offset or 0)
                if seg is not None and text[s0:e0] == seg:
                    what = f"operand {i} dropped"
                    out.append(Mutant(path, node.lineno, s0, e0, f"({new})", what))
        elif isinstance(node, ast.If):
            t = node.test
            s0 = at[t.lineno - 1] + t.col_offset
            e0 = at[(t.end_lineno or t.lineno) - 1] + (t.end_col_offset or 0)
            out.append(Mutant(path, t.lineno, s0, e0, "False", "if-test -> False"))
    good = []
    for m in out:
        try:
            compile(text[: m.start] + m.new + text[m.end :], path, "exec")
        except SyntaxError:
            continue
        good.append(m)
    return sorted(set(good), key=lambda m: (m.start, m.what))


def _copy_tree() -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="gridwork-mutate-"))
    for item in ROOT.iterdir():
        if item.name in SKIP:
            continue
        dest = tmp / item.name
        if item.is_dir():
            shutil.copytree(item, dest, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(item, dest)
    return tmp


def _run(tree: Path, args: list[str], log: Path, timeout: float) -> str:
    """pytest in a fork inside ``tree``: ``passed``, ``failed`` or ``timeout``."""
    pid = os.fork()
    if pid == 0:  # the child: its own imports of the project, from the copy
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.chdir(tree)
            sys.path.insert(0, str(tree))
            os.setpgid(0, 0)
            import pytest

            os._exit(int(pytest.main(["-q", "-p", "no:cacheprovider", *args])))
        except BaseException:  # a child must never return into the parent
            import traceback

            traceback.print_exc()
            os._exit(99)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "passed" if os.waitstatus_to_exitcode(status) == 0 else "failed"
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout"
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="+", help="module[:function,function]")
    parser.add_argument("--tests", action="append", required=True, help="test files or ids")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per mutant")
    parser.add_argument("--limit", type=int, default=0, help="at most this many mutants (0: all)")
    parser.add_argument("--list", action="store_true", help="only list the mutants")
    opts = parser.parse_args()

    todo: list[Mutant] = []
    for target in opts.targets:
        path, _, names = target.partition(":")
        todo += mutants(path, set(names.split(",")) if names else None)
    if opts.limit and len(todo) > opts.limit:
        step = len(todo) / opts.limit  # spread over the modules, not the first ones only
        todo = [todo[int(i * step)] for i in range(opts.limit)]
    if opts.list:
        for m in todo:
            print(f"{m.path}:{m.line}: {m.what}")
        return

    os.environ.setdefault("GRIDWORK_STATE_DIR", str(ROOT / ".gridwork"))
    # The heavy third-party imports once, before forking: never the project's modules, nor
    # a pytest plugin's (anyio, hypothesis), which pytest must import itself to rewrite.
    for name in ("numpy", "pandas", "geopandas", "shapely", "pyproj", "sqlalchemy"):
        __import__(name)

    tree = _copy_tree()
    logs = Path(tempfile.mkdtemp(prefix="gridwork-mutate-logs-"))
    try:
        base = logs / "baseline.log"
        outcome = _run(tree, ["-rf", *opts.tests], base, opts.timeout * 3)
        failing = re.findall(r"^FAILED (.+?)(?: - .*)?$", base.read_text(), flags=re.M)
        if outcome == "timeout" or (outcome == "failed" and not failing):
            sys.exit(f"the tests do not pass unmutated: see {base}")
        args = ["-x", *opts.tests, *(f"--deselect={f}" for f in failing)]
        if failing:
            print(f"deselected, failing before any mutation: {', '.join(failing)}")
        originals = {m.path: (tree / m.path).read_text() for m in todo}
        score: dict[str, list[int]] = {}
        survivors: list[Mutant] = []
        for k, m in enumerate(todo, 1):
            text = originals[m.path]
            (tree / m.path).write_text(text[: m.start] + m.new + text[m.end :])
            try:
                result = _run(tree, args, logs / f"mutant-{k}.log", opts.timeout)
            finally:
                (tree / m.path).write_text(text)
            killed = result != "passed"
            score.setdefault(m.path, [0, 0])[0] += int(killed)
            score[m.path][1] += 1
            if not killed:
                survivors.append(m)
            print(f"[{k}/{len(todo)}] {m.path}:{m.line} {m.what}: {result}", flush=True)
        print("\nscore (killed/total):")
        for path, (n_killed, total) in score.items():
            print(f"  {path}: {n_killed}/{total}")
        print("\nsurvivors:")
        for m in survivors:
            line = originals[m.path].splitlines()[m.line - 1].strip()
            print(f"  {m.path}:{m.line} {m.what}    | {line}")
    finally:
        shutil.rmtree(tree, ignore_errors=True)


if __name__ == "__main__":
    main()
