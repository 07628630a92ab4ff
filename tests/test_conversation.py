"""``term.conversation``: someone is asked only when stdin is a terminal; the questions go to
stdout only when it is that terminal and carries the human report."""

from __future__ import annotations

import io

from tffix import term


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_terminal_on_stdin_means_no_one_to_ask() -> None:
    assert term.conversation(stdin=io.StringIO(), stdout=_Tty(), stderr=_Tty()) is None


def test_a_terminal_stdout_carrying_the_report_is_where_to_ask() -> None:
    out = _Tty()
    assert term.conversation(stdin=_Tty(), stdout=out, stderr=_Tty()) is out


def test_redirected_or_json_stdout_is_never_where_to_ask() -> None:
    out = _Tty()
    for stdout, report in ((io.StringIO(), True), (out, False)):
        talk = term.conversation(
            report_on_stdout=report, stdin=_Tty(), stdout=stdout, stderr=_Tty()
        )
        assert talk is not stdout
        assert talk is not None  # the controlling terminal, else the terminal on stderr
