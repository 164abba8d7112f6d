"""dashboards: views and routes (being built)."""
urlpatterns = []
