"""Labelling helpers shared by tests that need several annotators' labels on the same items."""
import uuid

from annotation.assignment import assignment_claim_next
from annotation.services import label_submit


def label_in_order(project, user, choices):
    """``user`` labels the project's next items with ``choices`` ("A", "B", "tie", "both_bad").

    Display order is pinned, so "A" is the same response for every annotator.
    """
    for choice in choices:
        assignment = assignment_claim_next(project=project, annotator=user)
        assignment.display_order = sorted(assignment.display_order)
        assignment.save()
        label_submit(assignment_id=assignment.id, annotator=user, choice=choice, client_id=uuid.uuid4())


def make_champion(project, scores: dict[str, list[float]]):
    """A promoted version 1 of ``project`` whose scores are ``scores``: {model name: [score per response]}.

    Responses of a model are scored in id order; those beyond the list stay unscored.
    """
    from annotation.models import Response
    from training import services
    from training.models import ResponseScore

    run, _ = services.training_run_request(project=project, trigger="manual")
    services.training_run_start(run_id=run.id)
    version = services.training_run_complete(
        run_id=run.id, version=1, checkpoint_path=f"project-{project.id}/v1", metrics={"accuracy": 0.8, "pairs": 12},
        champion_metrics={}, promote=True, config={}, seed=0, code_version="test",
    )
    for model, values in scores.items():
        responses = Response.objects.filter(prompt__project=project, model_name=model).order_by("id")
        for response, value in zip(responses, values):
            ResponseScore.objects.create(response=response, model_version=version, score=value)
    return version
