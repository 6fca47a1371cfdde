"""A problem found in a rule file, located by file, line, column and key path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hub.errors import RuleError


@dataclass(frozen=True, slots=True, order=True)
class RuleProblem:
    """What is wrong and where: `file:line:column: key: message` (line and column from 1)."""

    file: str
    line: int
    column: int
    key_path: str
    message: str

    def __str__(self) -> str:
        key = f"{self.key_path}: " if self.key_path else ""
        return f"{self.file}:{self.line}:{self.column}: {key}{self.message}"


class RuleSetInvalid(RuleError):
    """The rule set has problems; `problems` lists every one of them, in file and line order."""

    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        self.problems = tuple(sorted(problems))
        count = len(self.problems)
        first = str(self.problems[0]) if self.problems else "no details"
        more = f" (and {count - 1} more)" if count > 1 else ""
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the rule files: {first}{more}")


def key_path(path: Sequence[str | int]) -> str:
    """`('triggers', 2, 'then', 0)` as `triggers[2].then[0]`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
