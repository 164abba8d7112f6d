from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = "Reward-model training"

    def ready(self):
        # The label browser (annotation) filters by disagreement with the reward model, whose
        # scores live here; annotation may not import training, so the rule is handed to it.
        from annotation.review import MODEL_DISAGREEMENT, label_id_set_register
        from training.model_quality import label_ids_disagreeing_with_champion

        label_id_set_register(MODEL_DISAGREEMENT, label_ids_disagreeing_with_champion)
