"""The admin console's training-side API, one module per area (views and their routes)."""
