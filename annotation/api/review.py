"""review: views and routes (being built)."""
urlpatterns = []
