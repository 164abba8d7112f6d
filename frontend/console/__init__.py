"""The admin console's pages, one module per area (views and their routes).

Each page checks access with the annotation selectors and renders a template; its scripts
talk to the JSON API, as the workbench and the Results page do.
"""
