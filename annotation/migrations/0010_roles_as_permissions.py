"""The roles become Django permissions and groups (annotation.roles).

Creates the three permissions on Project now rather than after migrating (Django's
post_migrate would, too late for the groups), the groups "Admins" (administer) and
"Reviewers" (review every project), and puts every staff user in "Admins": until now
``is_staff`` was what made an admin.
"""
from django.conf import settings
from django.db import migrations

PERMISSIONS = [
    ("administer", "Can administer every project, person and reward model"),
    ("review", "Can read and review the labels of projects"),
    ("annotate", "Can label projects"),
]
GROUPS = {"Admins": "administer", "Reviewers": "review"}


def create_roles(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    project_type, _ = ContentType.objects.get_or_create(app_label="annotation", model="project")
    permissions = {
        codename: Permission.objects.get_or_create(content_type=project_type, codename=codename, defaults={"name": name})[0]
        for codename, name in PERMISSIONS
    }
    for name, codename in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(permissions[codename])
    admins = Group.objects.get(name="Admins")
    admins.user_set.add(*User.objects.filter(is_staff=True))


def remove_roles(apps, schema_editor):
    # Back to is_staff: staff users stay staff; the groups go.
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("annotation", "0009_label_review_status_db_default"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="project",
            options={
                "ordering": ["name"],
                "permissions": [
                    ("administer", "Can administer every project, person and reward model"),
                    ("review", "Can read and review the labels of projects"),
                    ("annotate", "Can label projects"),
                ],
            },
        ),
        migrations.RunPython(create_roles, remove_roles),
    ]
