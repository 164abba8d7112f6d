"""The admin console's API, one module per area (views and their routes): projects, people, review, quality.

The annotator's hot path and the original endpoints stay in ``annotation.views``.
"""
