from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from training.models import TrainingRun
from training.services import training_run_request


class Command(BaseCommand):
    help = "Request a reward-model training run for a project (coalesces with an active run)."

    def add_arguments(self, parser):
        parser.add_argument("project", help="Project name or id.")
        parser.add_argument(
            "--wait", action="store_true",
            help="Train in this process instead of queueing for a worker, and print the result.",
        )

    def handle(self, *args, project, wait, **options):
        lookup = {"id": int(project)} if project.isdigit() else {"name": project}
        target = Project.objects.filter(**lookup).first()
        if target is None:
            raise CommandError(f"No project {project!r}.")
        run, created = training_run_request(project=target, trigger=TrainingRun.Trigger.CLI)
        if not created:
            self.stdout.write(f"A run is already {run.status} for {target.name!r} (run {run.id}); not starting another.")
            return
        self.stdout.write(f"Queued training run {run.id} for {target.name!r}.")
        if wait:
            from training.pipeline import execute_training_run

            try:
                version = execute_training_run(run.id, on_progress=self._draw_progress)
            except Exception as exc:  # noqa: BLE001 - already recorded on the run; said here as a sentence
                self.stdout.write("")
                raise CommandError(
                    f"Training run {run.id} failed: {type(exc).__name__}: {exc} The champion, if any, keeps serving."
                ) from exc
            self.stdout.write("")
            if version is None:
                self.stdout.write("A worker picked the run up first; follow it in the results page.")
                return
            self.stdout.write(
                self.style.SUCCESS(f"Model v{version.version}: {version.status}; held-out metrics {version.metrics}")
            )
            if version.gate.get("reason"):
                self.stdout.write(f"Promotion gate: {version.gate['reason']}")

    def _draw_progress(self, progress) -> None:
        width = 30
        done = int(width * progress.step / max(progress.total_steps, 1))
        bar = "#" * done + "-" * (width - done)
        self.stdout.write(
            f"\r[{bar}] step {progress.step}/{progress.total_steps}  loss {progress.loss:.4f}  "
            f"ETA {progress.eta_s:5.0f}s",
            ending="",
        )
        self.stdout.flush()
