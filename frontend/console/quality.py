"""quality pages: views and routes (being built)."""
urlpatterns = []
