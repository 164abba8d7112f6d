"""projects: views and routes (being built)."""
urlpatterns = []
