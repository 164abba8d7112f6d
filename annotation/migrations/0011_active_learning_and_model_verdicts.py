from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0010_roles_as_permissions"),
    ]

    operations = [
        migrations.AddField(
            model_name="project",
            name="uncertainty_random_share",
            field=models.FloatField(
                default=0.2,
                help_text="With the uncertainty selection order: share of leases drawn uniformly at random instead, "
                "0 to 1, so the labels stay usable for unbiased evaluation.",
            ),
        ),
        migrations.AddField(
            model_name="project",
            name="reveal_model_verdict",
            field=models.BooleanField(
                default=False,
                help_text="Show annotators the reward model's verdict on an item after they submit it (never before: "
                "seeing it first biases them).",
            ),
        ),
        migrations.AddConstraint(
            model_name="project",
            constraint=models.CheckConstraint(
                condition=models.Q(("uncertainty_random_share__gte", 0), ("uncertainty_random_share__lte", 1)),
                name="project_uncertainty_random_share_range",
            ),
        ),
        migrations.AddField(
            model_name="comparisonitem",
            name="model_priority",
            field=models.FloatField(
                default=0.0,
                help_text="How much a label here would teach the reward model, from the champion's scores at its last "
                "rescoring (training.priorities): 1 for a coin toss or a contradicted majority, near 0 when the model is "
                "sure. The uncertainty selection order leases the highest first; 0 everywhere without a model.",
            ),
        ),
        migrations.AddIndex(
            model_name="comparisonitem",
            index=models.Index(fields=["project", "label_count", "-model_priority", "id"], name="item_project_priority_idx"),
        ),
    ]
