"""TensorFlow's eras (``[[tf_era]]`` in ``rules/eras.toml``): which releases share advice.

Pure. Kept apart from ``tffix.normalize`` so that the rules loader, which parses these
tables, and the normalisers, which read loaded rules, do not import each other.
"""

from __future__ import annotations

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from tffix.errors import RuleError
from tffix.record import record


@record
class Era:
    """A range of TensorFlow releases within which the same GPU advice holds."""

    id: str
    tf: SpecifierSet
    summary: str

    def contains(self, version: Version) -> bool:
        """True when *version* (a release, a pre-release or a nightly) is in this era."""
        return self.tf.contains(version, prereleases=True)


def parse_eras(file: str, value: object) -> list[Era]:
    """``[[tf_era]]`` tables -> eras, in file order."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise RuleError(f"{file}: tf_era: must be an array of tables ([[tf_era]])")
    out: list[Era] = []
    for i, obj in enumerate(value):
        key = f"{file}: tf_era[{i}]"
        if set(obj) != {"id", "tf", "summary"} or not all(isinstance(v, str) for v in obj.values()):
            raise RuleError(f"{key}: needs exactly the strings id, tf and summary")
        try:
            spec = SpecifierSet(obj["tf"])
        except InvalidSpecifier as exc:
            raise RuleError(f"{key}.tf: {obj['tf']!r} is not a version specifier") from exc
        out.append(Era(id=obj["id"], tf=spec, summary=obj["summary"]))
    return out
