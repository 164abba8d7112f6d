"""people: views and routes (being built)."""
urlpatterns = []
