"""The confirmation seam, asked with questionary (the only module that imports it).

``QuestionaryConfirm`` implements ``tffix.transaction.Confirm``: apply all, go step by step,
choose steps, or quit. ``ask_interrupted`` asks what to do about an interrupted run. Nothing
here decides anything: it only turns the user's keys into a ``Selection``. The questions go
to the stream :func:`tffix.term.conversation` chose (the terminal, also when stdout is a file,
a pipe or a JSON document).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TextIO

import questionary

from tffix import stepdeps
from tffix.model import Diagnosis, PlanStep
from tffix.record import record
from tffix.term import clean
from tffix.transaction import Mode, Selection

_ALL, _STEPWISE, _CHOOSE, _QUIT = "Apply all", "Go step by step", "Choose steps", "Quit"


@record
class QuestionaryConfirm:
    """Asks on the terminal. Ctrl-C at a question interrupts tffix (exit 130), as Ctrl-C
    anywhere else does: ``unsafe_ask`` lets the KeyboardInterrupt through, where ``ask`` would
    swallow it and print "Cancelled by user"."""

    output: TextIO | None = None
    """Where the questions are drawn (``None``: stdout)."""

    def _io(self) -> dict[str, Any]:
        return _io(self.output)

    def select(self, diagnosis: Diagnosis, offered: tuple[int, ...]) -> Selection:
        """Ask what to do with the offered steps."""
        count = len(offered)
        answer = questionary.select(
            f"Apply the {count} step{'s' if count != 1 else ''} tffix can make?",
            choices=[f"{_ALL} ({count})", _STEPWISE, _CHOOSE, _QUIT],
            **self._io(),
        ).unsafe_ask()
        if answer is None or answer == _QUIT:
            return Selection(Mode.QUIT)
        if answer.startswith(_ALL):
            return Selection(Mode.ALL, offered)
        if answer == _STEPWISE:
            return Selection(Mode.STEPWISE, offered)
        chosen = questionary.checkbox(
            "Which steps? (a step comes with the steps it needs)",
            choices=[
                questionary.Choice(
                    f"{n}. {clean(diagnosis.plan[n - 1].summary)}{_needs_text(diagnosis, n)}",
                    value=n,
                    checked=True,
                )
                for n in offered
            ],
            **self._io(),
        ).unsafe_ask()
        return Selection(Mode.CHOSEN, tuple(chosen or ()))

    def step(
        self, number: int, step: PlanStep, together: Sequence[tuple[int, PlanStep]] = ()
    ) -> bool:
        """Ask about one step; steps it cannot go without are named and come with it."""
        text = f"Step {number}: {clean(step.summary)}?"
        if together:
            others = "; ".join(f"step {n}: {clean(s.summary)}" for n, s in together)
            text = (
                f"Step {number}: {clean(step.summary)}, together with {others} "
                "(they need each other: yes applies them all, no skips them all)?"
            )
        return bool(questionary.confirm(text, default=True, **self._io()).unsafe_ask())


def _needs_text(diagnosis: Diagnosis, number: int) -> str:
    needs = stepdeps.needs_of(diagnosis.plan).get(number, ())
    return f" (needs {', '.join(map(str, needs))})" if needs else ""


def _io(output: TextIO | None) -> dict[str, Any]:
    """questionary's ``output`` for *output* (prompt_toolkit draws on stdout by default)."""
    if output is None or output is sys.stdout:
        return {}
    from prompt_toolkit.output import create_output

    return {"output": create_output(stdout=output)}


def ask_interrupted(description: str, output: TextIO | None = None) -> str:
    """``undo``, ``resume`` or ``quit``: what to do about an interrupted run."""
    answer = questionary.select(
        f"{clean(description)} What now?",
        choices=[
            questionary.Choice("Undo it (restore the state before that run)", value="undo"),
            questionary.Choice(
                "Resume (roll back the unfinished step, then repair)", value="resume"
            ),
            questionary.Choice("Quit", value="quit"),
        ],
        **_io(output),
    ).unsafe_ask()
    return answer or "quit"
