"""Fixtures the review tests share: a crew of three annotators and a reviewer."""
import pytest


@pytest.fixture
def crew(make_user):
    return [make_user(name) for name in ("ann1", "ann2", "ann3")]


@pytest.fixture
def reviewer(make_user):
    return make_user("rev")
