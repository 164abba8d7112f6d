from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = "Reward-model training"

    def ready(self):
        # Annotation needs the reward model's scores in two places, but may not import training,
        # where they live; so the rules are handed to it. The label browser filters by
        # disagreement with the model, and a submit may answer with the model's verdict.
        from annotation.model_verdict import response_scores_register
        from annotation.review import MODEL_DISAGREEMENT, label_id_set_register
        from training.model_quality import (
            champion_scores_state,
            items_disagreeing_with_champion,
            label_ids_disagreeing_with_champion,
        )
        from training.verdicts import item_response_scores

        label_id_set_register(
            MODEL_DISAGREEMENT, label_ids_disagreeing_with_champion, champion_scores_state, items_disagreeing_with_champion
        )
        response_scores_register(item_response_scores)
