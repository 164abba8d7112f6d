"""Review API: the label browser's lists (labels, skips), one item with all its labels, and review decisions.

For admins and the project's reviewers (``annotation.selectors.project_get_for_reviewer``);
anyone else gets the same 404 as for a project that does not exist. Model names come with
the responses, except for a reviewer who also annotates the project (``selectors.user_sees_model_names``).
"""
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import gold, review, review_items, selectors
from annotation.models import Assignment, Label, LabelReview, Project
from annotation.pagination import IdCursorPagination

# ------------------------------------------------------------------ shapes


class ReviewResponseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model_name = serializers.CharField(allow_blank=True)
    text = serializers.CharField(allow_blank=True)
    html = serializers.CharField(allow_blank=True, help_text="Sanitised HTML rendering of the Markdown text.")


class ShownResponseSerializer(ReviewResponseSerializer):
    position = serializers.ChoiceField(choices=Assignment.Position.values, help_text="Where the annotator saw it: A = left.")
    rank = serializers.IntegerField(allow_null=True, help_text="The annotator's group for it, 1 = best; equal ranks tie.")


class ReviewMessageSerializer(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField(allow_blank=True)
    html = serializers.CharField(allow_blank=True)


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class ReviewFlagSerializer(serializers.Serializer):
    flag = serializers.ChoiceField(choices=Label.Flag.values)
    response_id = serializers.IntegerField(allow_null=True)


OUTCOME_CHOICES = [*review.Outcome.PAIRWISE, *review.Outcome.RANKING]


class ReviewLabelRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item_id = serializers.IntegerField()
    prompt_external_id = serializers.CharField()
    conversation = ReviewMessageSerializer(many=True)
    annotator = UserRefSerializer()
    outcome = serializers.ChoiceField(choices=OUTCOME_CHOICES, help_text="A, B, tie, both_bad; rankings: ranking_tie or ranking_strict.")
    ranking = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))
    strength = serializers.IntegerField(allow_null=True)
    flags = ReviewFlagSerializer(many=True)
    rationale = serializers.CharField(allow_blank=True)
    seconds_spent = serializers.FloatField()
    review_status = serializers.ChoiceField(choices=Label.ReviewStatus.values)
    corrected_ranking = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()), allow_null=True
    )
    created_at = serializers.DateTimeField()
    responses = ShownResponseSerializer(many=True, help_text="Left to right as the annotator saw them.")
    gold_item = serializers.BooleanField(help_text="The label's item is a gold item (has a known answer).")
    matches_gold = serializers.BooleanField(
        allow_null=True,
        help_text="On a gold item: whether every verdict of the annotator's ranking is the answer's (what gold accuracy "
        "counts). Null on ordinary items and for both-bad labels.",
    )


class ReviewSkipRowSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The assignment's id.")
    item_id = serializers.IntegerField()
    prompt_external_id = serializers.CharField()
    annotator = UserRefSerializer()
    skip_reason = serializers.CharField(allow_blank=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class ReviewItemRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    prompt_external_id = serializers.CharField()
    conversation = ReviewMessageSerializer(many=True)
    label_count = serializers.IntegerField(help_text="Labels that count (rejected ones do not).")
    labels_per_item = serializers.IntegerField()
    gold = serializers.BooleanField(help_text="A gold item: it has a known answer and is never work to finish.")
    open_leases = serializers.IntegerField(help_text="Annotators holding the item right now (active, unexpired leases).")
    agreement = serializers.FloatField(
        allow_null=True, help_text="How often its counted labels agree, pair by pair (the exports' agreement rule); "
        "null under two labels with a verdict.",
    )
    created_at = serializers.DateTimeField()


class LabelReviewEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    decision = serializers.ChoiceField(choices=LabelReview.Decision.values)
    reason = serializers.CharField(allow_blank=True)
    reviewer = serializers.CharField(allow_null=True, help_text="Username; null if the user was deleted.")
    corrected_ranking = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()), allow_null=True
    )
    created_at = serializers.DateTimeField()


class ItemLabelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    annotator = UserRefSerializer()
    outcome = serializers.ChoiceField(choices=OUTCOME_CHOICES)
    ranking = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))
    strength = serializers.IntegerField(allow_null=True)
    ratings = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()), help_text="Response id -> {criterion: score}."
    )
    flags = ReviewFlagSerializer(many=True)
    rationale = serializers.CharField(allow_blank=True)
    seconds_spent = serializers.FloatField()
    review_status = serializers.ChoiceField(choices=Label.ReviewStatus.values)
    corrected_ranking = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()), allow_null=True
    )
    created_at = serializers.DateTimeField()
    shown = ShownResponseSerializer(many=True, help_text="This label's responses in the order its annotator saw them.")
    reviews = LabelReviewEntrySerializer(many=True, help_text="Every decision on the label, oldest first.")
    matches_gold = serializers.BooleanField(
        allow_null=True, help_text="On a gold item: whether the annotator's ranking matches the answer; else null."
    )


class ReviewItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project_id = serializers.IntegerField()
    label_format = serializers.ChoiceField(choices=Project.LabelFormat.choices)
    prompt_external_id = serializers.CharField()
    conversation = ReviewMessageSerializer(many=True)
    responses = ReviewResponseSerializer(many=True, help_text="In the item's canonical (import) order.")
    label_count = serializers.IntegerField(help_text="Labels that count (rejected ones do not).")
    labels_per_item = serializers.IntegerField()
    gold_ranking = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()), allow_null=True,
        help_text="A gold item's known answer (response ids, best first); null for ordinary items.",
    )
    labels = ItemLabelSerializer(many=True)


class LabelReviewRequestSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=LabelReview.Decision.values)
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=review.REASON_MAX_LENGTH,
        help_text="Required for reject and correct.",
    )
    corrected_ranking = serializers.ListField(
        child=serializers.ListField(child=serializers.CharField(max_length=1), allow_empty=False, max_length=9),
        required=False, allow_null=True, default=None, max_length=9,
        help_text='correct only: positions as the annotator saw them, best first, ties grouped, e.g. [["B"], ["A"]].',
    )


class LabelReviewResultSerializer(serializers.Serializer):
    label_id = serializers.IntegerField()
    review_status = serializers.ChoiceField(choices=Label.ReviewStatus.values)
    corrected_ranking = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()), allow_null=True
    )
    recorded = serializers.BooleanField(help_text="False when the label already had this outcome (nothing written).")
    review = LabelReviewEntrySerializer(allow_null=True)


# ------------------------------------------------------------------ rendering rows


def _user(user) -> dict:
    return {"id": user.id, "username": user.username}


def _review_entry(entry: LabelReview) -> dict:
    return {
        "id": entry.id, "decision": entry.decision, "reason": entry.reason,
        "reviewer": entry.reviewer.username if entry.reviewer else None,
        "corrected_ranking": entry.corrected_ranking, "created_at": entry.created_at,
    }


def _outcome(label: Label, label_format: str) -> str:
    return review.label_outcome(
        label_format=label_format, ranking=label.ranking, display_order=label.display_order,
        is_tie=label.is_tie, both_bad=label.both_bad,
    )


def _label_row(label: Label, *, label_format: str, responses: dict) -> dict:
    answer = label.item.gold_ranking
    return {
        "id": label.id,
        "item_id": label.item_id,
        "prompt_external_id": label.item.prompt.external_id,
        "conversation": review.conversation_html(label.item.prompt),
        "annotator": _user(label.annotator),
        "outcome": _outcome(label, label_format),
        "ranking": label.ranking,
        "strength": label.strength,
        "flags": label.flags,
        "rationale": label.rationale,
        "seconds_spent": label.seconds_spent,
        "review_status": label.review_status,
        "corrected_ranking": label.corrected_ranking,
        "created_at": label.created_at,
        "responses": review.shown_responses(
            display_order=label.display_order, ranking=label.ranking, responses=responses.get(label.item_id, {})
        ),
        "gold_item": answer is not None,
        "matches_gold": gold.label_gold_verdict(ranking=label.ranking, both_bad=label.both_bad, answer=answer),
    }


FILTER_PARAMETERS = [
    OpenApiParameter("annotators", str, description="Comma-separated user ids."),
    OpenApiParameter("since", str, description="ISO 8601; created (skips: finished) at or after."),
    OpenApiParameter("until", str, description="ISO 8601; before."),
]
LABEL_FILTER_PARAMETERS = FILTER_PARAMETERS + [
    OpenApiParameter("outcome", str, enum=OUTCOME_CHOICES, description="Pairwise: A, B (as shown), tie, both_bad. "
                     "Ranking: ranking_tie or ranking_strict."),
    OpenApiParameter("flag", str, enum=Label.Flag.values),
    OpenApiParameter("disagreement", bool, description="The label's verdict differs from the majority over the item's other labels."),
    OpenApiParameter("model_disagreement", bool, description="The label prefers a response the champion reward model "
                     "scored lower (ties and both-bad labels never do; none without a champion)."),
    OpenApiParameter("has_rationale", bool),
    OpenApiParameter("review_status", str, enum=Label.ReviewStatus.values),
    OpenApiParameter("gold", str, enum=review.GOLD_FILTERS, description="item: labels of gold items; ordinary: of the "
                     "others; right / wrong: gold labels that match their item's answer or contradict it (both-bad "
                     "labels are neither)."),
]


# ------------------------------------------------------------------ views


class ReviewLabelListView(APIView):
    pagination_class = IdCursorPagination

    @extend_schema(
        parameters=LABEL_FILTER_PARAMETERS,
        responses=ReviewLabelRowSerializer(many=True),
        summary="The label browser: a project's labels with filters, oldest first (admins and reviewers)",
        description="Cursor-paginated by id: follow `next`. Responses come as the annotator saw them, with model "
        "names (blank for a reviewer who also annotates the project, who must stay blind).",
    )
    def get(self, request, project_id: int):
        project = selectors.project_get_for_reviewer(user=request.user, project_id=project_id)
        filters = review.BrowserFilters.from_params(request.query_params, label_format=project.label_format)
        paginator = self.pagination_class()
        labels = paginator.paginate_queryset(review.review_labels(project=project, filters=filters), request, view=self)
        responses = review.responses_by_item(
            (label.item_id for label in labels),
            with_model_names=selectors.user_sees_model_names(user=request.user, project=project),
        )
        rows = [_label_row(label, label_format=project.label_format, responses=responses) for label in labels]
        return paginator.get_paginated_response(ReviewLabelRowSerializer(rows, many=True).data)


class ReviewSkipListView(APIView):
    pagination_class = IdCursorPagination

    @extend_schema(
        parameters=FILTER_PARAMETERS + [OpenApiParameter("skip_reason", str, description="Reason contains this (any case).")],
        responses=ReviewSkipRowSerializer(many=True),
        summary="Skips in a project, oldest first (admins and reviewers)",
    )
    def get(self, request, project_id: int):
        project = selectors.project_get_for_reviewer(user=request.user, project_id=project_id)
        filters = review.BrowserFilters.from_params(request.query_params, label_format=project.label_format)
        paginator = self.pagination_class()
        skips = paginator.paginate_queryset(review.review_skips(project=project, filters=filters), request, view=self)
        rows = [
            {
                "id": skip.id, "item_id": skip.item_id, "prompt_external_id": skip.item.prompt.external_id,
                "annotator": _user(skip.annotator), "skip_reason": skip.skip_reason, "finished_at": skip.finished_at,
            }
            for skip in skips
        ]
        return paginator.get_paginated_response(ReviewSkipRowSerializer(rows, many=True).data)


class ReviewItemListView(APIView):
    pagination_class = IdCursorPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("gold", bool, description="Gold items only (true) or ordinary ones only (false)."),
            OpenApiParameter("progress", str, enum=review_items.ITEM_PROGRESS, description="open: ordinary items short of "
                             "the labels wanted; finished: ordinary items that have them; unlabelled: no label that counts."),
            OpenApiParameter("prompt", str, description="The prompt's external id contains this (any case)."),
            OpenApiParameter("agreement_below", float, description="Only items with two or more labels (not 'both bad') "
                             "whose agreement rate is below this number, in (0, 1], as the exports read it."),
        ],
        responses=ReviewItemRowSerializer(many=True),
        summary="Items in a project, oldest first, with their progress (admins and reviewers)",
    )
    def get(self, request, project_id: int):
        project = selectors.project_get_for_reviewer(user=request.user, project_id=project_id)
        filters = review_items.ItemFilters.from_params(request.query_params)
        paginator = self.pagination_class()
        items = paginator.paginate_queryset(review_items.review_items(project=project, filters=filters), request, view=self)
        leases = review_items.open_leases_by_item([item.id for item in items])
        agreement = review_items.item_agreement([item.id for item in items])
        rows = [
            {
                "id": item.id, "prompt_external_id": item.prompt.external_id,
                "conversation": review.conversation_html(item.prompt), "label_count": item.label_count,
                "labels_per_item": project.labels_per_item, "gold": item.gold_ranking is not None,
                "open_leases": leases.get(item.id, 0), "agreement": agreement[item.id], "created_at": item.created_at,
            }
            for item in items
        ]
        return paginator.get_paginated_response(ReviewItemRowSerializer(rows, many=True).data)


class ReviewItemView(APIView):
    @extend_schema(
        responses=ReviewItemSerializer,
        summary="One item with every label on it and their review history (admins and reviewers)",
    )
    def get(self, request, project_id: int, item_id: int):
        project = selectors.project_get_for_reviewer(user=request.user, project_id=project_id)
        item = review.review_item_get(project=project, item_id=item_id)
        responses = review.responses_by_item(
            [item.id], with_model_names=selectors.user_sees_model_names(user=request.user, project=project)
        ).get(item.id, {})
        slots = sorted(responses.values(), key=lambda response: response["id"])
        body = {
            "id": item.id,
            "project_id": project.id,
            "label_format": project.label_format,
            "prompt_external_id": item.prompt.external_id,
            "conversation": review.conversation_html(item.prompt),
            "responses": slots,
            "label_count": item.label_count,
            "labels_per_item": project.labels_per_item,
            "gold_ranking": item.gold_ranking,
            "labels": [
                {
                    "id": label.id,
                    "annotator": _user(label.annotator),
                    "outcome": _outcome(label, project.label_format),
                    "ranking": label.ranking,
                    "strength": label.strength,
                    "ratings": label.ratings,
                    "flags": label.flags,
                    "rationale": label.rationale,
                    "seconds_spent": label.seconds_spent,
                    "review_status": label.review_status,
                    "corrected_ranking": label.corrected_ranking,
                    "created_at": label.created_at,
                    "shown": review.shown_responses(
                        display_order=label.display_order, ranking=label.ranking, responses=responses
                    ),
                    "reviews": [_review_entry(entry) for entry in label.reviews.all()],
                    "matches_gold": gold.label_gold_verdict(
                        ranking=label.ranking, both_bad=label.both_bad, answer=item.gold_ranking
                    ),
                }
                for label in item.review_labels
            ],
        }
        return Response(ReviewItemSerializer(body).data)


class LabelReviewView(APIView):
    @extend_schema(
        request=LabelReviewRequestSerializer,
        responses=LabelReviewResultSerializer,
        summary="Accept, reject or correct a label, or revert the last decision (admins and the project's reviewers)",
        description="Reject takes the label out of training and reopens its item for another annotator; "
        "revert brings it back (the item may then hold more labels than wanted). Repeating a decision "
        "the label already has changes nothing (`recorded` false).",
    )
    def post(self, request, label_id: int):
        serializer = LabelReviewRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        label, entry = review.label_review(label_id=label_id, reviewer=request.user, **serializer.validated_data)
        body = {
            "label_id": label.id,
            "review_status": label.review_status,
            "corrected_ranking": label.corrected_ranking,
            "recorded": entry is not None,
            "review": _review_entry(entry) if entry is not None else None,
        }
        return Response(LabelReviewResultSerializer(body).data)


urlpatterns = [
    path("projects/<int:project_id>/review/labels/", ReviewLabelListView.as_view(), name="review-label-list"),
    path("projects/<int:project_id>/review/skips/", ReviewSkipListView.as_view(), name="review-skip-list"),
    path("projects/<int:project_id>/review/items/", ReviewItemListView.as_view(), name="review-item-list"),
    path("projects/<int:project_id>/review/items/<int:item_id>/", ReviewItemView.as_view(), name="review-item"),
    path("labels/<int:label_id>/review/", LabelReviewView.as_view(), name="label-review"),
]
