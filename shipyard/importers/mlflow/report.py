"""`ImportReport`: what an import copied (or, dry, would copy), what was there already, and what it left
behind and why."""

from __future__ import annotations

from dataclasses import dataclass, field

# The counters, in the order a report lists them, with how they read.
COUNTERS = (
    ("experiments", "experiments"),
    ("runs", "runs"),
    ("params", "params"),
    ("tags", "tags"),
    ("metric_points", "metric points"),
    ("datasets", "dataset inputs"),
    ("artifacts", "artifact files"),
    ("artifact_bytes", "artifact bytes"),
    ("logged_models", "logged models"),
    ("registered_models", "registered models"),
    ("versions", "model versions"),
    ("aliases", "aliases"),
)


@dataclass(frozen=True)
class NotCarried:
    """Something of the MLflow store the import did not copy: what kind, which one, and why."""

    kind: str
    what: str
    why: str


@dataclass
class ImportReport:
    """Counts of what was copied (would be, when ``dry_run``), of what an earlier import had copied already
    (``already``), and everything not carried over with the reason. Filled in as the import goes, so an
    interrupted import's report still says how far it got."""

    source: str
    dry_run: bool = False
    copied: dict[str, int] = field(default_factory=lambda: dict.fromkeys((name for name, _ in COUNTERS), 0))
    already: dict[str, int] = field(default_factory=lambda: dict.fromkeys((name for name, _ in COUNTERS), 0))
    not_carried: list[NotCarried] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, counter: str, n: int = 1) -> None:
        self.copied[counter] += n

    def skip(self, kind: str, what: str, why: str) -> None:
        self.not_carried.append(NotCarried(kind, what, why))

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def lines(self) -> list[str]:
        """The report as text lines (what the CLI prints)."""
        verb = "would copy" if self.dry_run else "copied"
        out = [f"MLflow import from {self.source} ({'dry run: nothing written' if self.dry_run else 'done'})"]
        for name, label in COUNTERS:
            done, before = self.copied[name], self.already[name]
            if done or before:
                tail = f" ({before} already imported)" if before else ""
                out.append(f"  {verb} {done} {label}{tail}")
        if self.not_carried:
            out.append(f"not carried over ({len(self.not_carried)}):")
            out += [f"  {n.kind} {n.what}: {n.why}" for n in self.not_carried]
        if self.notes:
            out.append("notes:")
            out += [f"  {note}" for note in self.notes]
        return out
