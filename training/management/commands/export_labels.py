import dataclasses
import sys
import time
from collections.abc import Iterable, Iterator

from django.core.management.base import BaseCommand, CommandError

from annotation.export import LabelFilters
from annotation.models import Project
from config.errors import DomainError
from training.export import KIND_FORMATS, KINDS, PAIR_STYLES, ExportRequest, project_export

FORMATS = tuple(dict.fromkeys(name for formats in KIND_FORMATS.values() for name in formats))


class Progress:
    """Rows written so far, on stderr: a bar redrawn in place on a terminal, a final line either way.

    ``total`` is the number of rows where the export can count them cheaply, else None (then
    the bar shows the count and the rate only).
    """

    WIDTH = 24
    REDRAW_SECONDS = 0.2

    def __init__(self, write, *, total: int | None, live: bool):
        self.write, self.total, self.live = write, total, live
        self.done = 0
        self.started = self.drawn = time.monotonic()

    def counted(self, rows: Iterable[dict]) -> Iterator[dict]:
        for row in rows:
            yield row
            self.done += 1
            if self.live and time.monotonic() - self.drawn >= self.REDRAW_SECONDS:
                self.drawn = time.monotonic()
                self.write("\r" + self.line(), ending="")

    def line(self) -> str:
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        if not self.total:
            return f"{self.done:,} rows {rate:,.0f} rows/s"
        share = min(self.done / self.total, 1.0)
        filled = round(share * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        return f"[{bar}] {self.done:,}/{self.total:,} rows {share:.0%} {rate:,.0f} rows/s"

    def finish(self, summary: str) -> None:
        if self.live:
            self.write("\r" + self.line() + "\x1b[K")  # erase what a longer earlier line left
        self.write(summary)


class Command(BaseCommand):
    help = "Export a project's pairs, labels, scores or leaderboard to a file: the same bytes as the export API."

    def add_arguments(self, parser):
        parser.add_argument("project", help="Project name or id.")
        parser.add_argument("--kind", choices=KINDS, default="labels")
        parser.add_argument("--format", dest="export_format", choices=FORMATS, default="jsonl",
                            help="jsonl or csv; parquet for pairs.")
        parser.add_argument("--style", choices=PAIR_STYLES, default="plain", help="Pairs only.")
        parser.add_argument("--ties", choices=("0", "1"), help="Pairs only; default: the project's training policy.")
        parser.add_argument("--model-version", dest="model_version", type=int, help="Scores only; default: the champion.")
        parser.add_argument("--since", help="Pairs and labels: only labels at or after this ISO 8601 time.")
        parser.add_argument("--until", help="Pairs and labels: only labels before this ISO 8601 time.")
        parser.add_argument("--annotators", help="Pairs and labels: only these user ids, comma-separated.")
        parser.add_argument("--agreement-below", dest="agreement_below",
                            help="Pairs and labels: only items whose annotators' agreement rate is below this, in (0, 1].")
        parser.add_argument("--out", required=True, help="File to write ('-' for standard output).")

    def handle(self, *args, project, kind, export_format, style, ties, model_version, out, **options):
        lookup = {"id": int(project)} if project.isdigit() else {"name": project}
        target = Project.objects.filter(**lookup).first()
        if target is None:
            raise CommandError(f"No project {project!r}.")
        try:
            filters = LabelFilters.from_params(
                {name: options[name] for name in ("since", "until", "annotators", "agreement_below")}
            )
            export = project_export(target, ExportRequest(
                kind=kind, export_format=export_format, style=style,
                ties=None if ties is None else ties == "1", version=model_version, filters=filters,
            ))
        except DomainError as error:
            details = "; ".join(f"--{name.replace('_', '-')}: {' '.join(problems)}" for name, problems in error.fields.items())
            raise CommandError(f"{error.message} {details}".strip()) from error

        live = self.stderr.isatty()
        progress = Progress(
            lambda text, ending="\n": self.stderr.write(text, style_func=str, ending=ending),
            total=export.count() if live else None,
            live=live,
        )
        export = dataclasses.replace(export, rows=progress.counted(export.rows))
        to_stdout = out == "-"
        handle = sys.stdout.buffer if to_stdout else open(out, "wb")  # noqa: SIM115 - closed below
        try:
            if export.export_format == "parquet":
                export.write_parquet(handle)  # sequential writes: a pipe is fine
            else:
                for line in export.lines():
                    handle.write(line.encode())
        finally:
            if not to_stdout:
                handle.close()
        progress.finish(f"{progress.done:,} rows written ({kind}, {export_format}) to {out}")
