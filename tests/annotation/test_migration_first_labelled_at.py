"""Migration 0013 gives existing counter rows their annotator's first label in the project."""
import datetime
import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("annotation", "0012_item_model_priority_db_default")]
AFTER = [("annotation", "0013_annotator_progress_first_labelled_at")]


@pytest.mark.django_db(transaction=True)
def test_existing_rows_get_the_earliest_label_of_their_annotator_in_their_project():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    User = apps.get_model("auth", "User")
    Project, Prompt = apps.get_model("annotation", "Project"), apps.get_model("annotation", "Prompt")
    Item, Label = apps.get_model("annotation", "ComparisonItem"), apps.get_model("annotation", "Label")
    Progress = apps.get_model("annotation", "AnnotatorProgress")
    ann, other = User.objects.create(username="ann"), User.objects.create(username="other")
    day = datetime.datetime(2026, 11, 2, 9, 0, tzinfo=datetime.timezone.utc)
    projects = [Project.objects.create(name=name) for name in ("One", "Two")]
    for offset, project in enumerate(projects):
        prompt = Prompt.objects.create(project=project, external_id="p", conversation=[])
        for hours in (5, 2 + offset, 7):
            item = Item.objects.create(project=project, prompt=prompt)
            label = Label.objects.create(
                item=item, annotator=ann, client_id=uuid.uuid4(), ranking=[[1], [2]], display_order=[1, 2]
            )
            Label.objects.filter(id=label.id).update(created_at=day + datetime.timedelta(hours=hours))
        Progress.objects.create(project=project, annotator=ann)
        Progress.objects.create(project=project, annotator=other)  # skipped only: no label

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    Progress = executor.loader.project_state(AFTER).apps.get_model("annotation", "AnnotatorProgress")
    firsts = {(row.project.name, row.annotator.username): row.first_labelled_at for row in Progress.objects.all()}
    assert firsts == {
        ("One", "ann"): day + datetime.timedelta(hours=2),
        ("Two", "ann"): day + datetime.timedelta(hours=3),
        ("One", "other"): None,
        ("Two", "other"): None,
    }
