"""The simulated 2.21.0 release has the RUNPATH measured from the real wheel."""

from __future__ import annotations

from tests.harness import catalog
from tests.harness.catalog import MEASURED, RUNPATH_221


def test_the_simulated_2_21_runpath_is_the_measured_one() -> None:
    raw = (MEASURED / "tensorflow-2.21.0-libtensorflow_framework.so.2.runpath").read_text()
    entries = raw.strip().split(":")
    assert len(raw) > 20_000 and len(entries) == 668  # read whole, not the first 1 kB
    assert RUNPATH_221.split(":") == list(dict.fromkeys(entries))
    assert not any("cusolver" in e for e in entries)
    release = next(r for r in catalog.RELEASES if (r.dist, r.version) == ("tensorflow", "2.21.0"))
    assert release.runpath == RUNPATH_221
