import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Everything loaded so far lives as long as the process. Out of the garbage collector's reach
# (gc.freeze), a full collection scans only what requests have created since: before, the
# ~80,000 objects of Django, the apps and numpy made each full collection cost ~50 ms on this
# machine, paid by whichever request happened to trigger it. The URLconf is loaded first so
# that the views, and what they import, are frozen too.
get_resolver().url_patterns
gc.freeze()
