"""model_quality: views and routes (being built)."""
urlpatterns = []
