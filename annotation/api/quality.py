"""quality: views and routes (being built)."""
urlpatterns = []
