from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AnnotationConfig(AppConfig):
    name = "annotation"
    verbose_name = "Annotation"

    def ready(self):
        # A migrate or flush may create the role permissions anew, with new ids (annotation.roles).
        from annotation.roles import permission_ids_forget

        post_migrate.connect(permission_ids_forget, dispatch_uid="annotation.roles.permission_ids_forget")
