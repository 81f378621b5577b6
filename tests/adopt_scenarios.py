#!/usr/bin/env python3
"""Moves integration-test scenarios written as their own test binary (tests/NAME.rs with
`mod common;`) into the single test binary tests/it/ (tests/it/NAME.rs, declared in
tests/it/main.rs).

    python3 tests/adopt_scenarios.py tests/NEW_SCENARIO.rs [...]

Three mechanical steps per file, so a scenario written either way converts without review:
the file moves to tests/it/, its `mod common;` (and any other shared support module) becomes
`use crate::common;`, and `mod NAME;` joins the sorted scenario list in tests/it/main.rs.
A new support folder (tests/FOO_support/mod.rs) moves to tests/it/ by hand, with its
`mod FOO_support;` above the scenario list.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
IT = ROOT / "tests" / "it"
MAIN = IT / "main.rs"
SUPPORT = re.compile(r"^mod (common|\w+_support);$", re.M)
# The scenario list in main.rs: every `mod NAME;` line after this marker.
MARKER = "// Scenarios, one file each"


def adopt(path: pathlib.Path) -> str:
    name = path.stem
    target = IT / path.name
    if target.exists():
        sys.exit(f"{target} exists already")
    text = SUPPORT.sub(r"use crate::\1;", path.read_text())
    # #[path] attributes are relative to the file's folder, which is one level deeper now.
    text = text.replace('#[path = "../', '#[path = "../../')
    target.write_text(text)
    path.unlink()
    regressions = path.with_suffix(".proptest-regressions")
    if regressions.exists():
        regressions.rename(IT / regressions.name)
    return name


def declare(names: list[str]) -> None:
    text = MAIN.read_text()
    head, sep, tail = text.partition(MARKER)
    if not sep:
        sys.exit(f"{MAIN} lacks the marker {MARKER!r}")
    comment, _, mods = tail.partition("\n")
    declared = set(re.findall(r"^mod (\w+);$", mods, re.M))
    declared.update(names)
    lines = "".join(f"mod {n};\n" for n in sorted(declared))
    MAIN.write_text(head + sep + comment + "\n" + lines)


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    declare([adopt(pathlib.Path(arg).resolve()) for arg in sys.argv[1:]])


if __name__ == "__main__":
    main()
