"""The web server's entry point: what each gunicorn worker loads once."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_loaded_app_is_out_of_the_garbage_collectors_full_collections():
    """Without gc.freeze a full collection rescanned ~80,000 long-lived objects (~50 ms here), inside a request."""
    probe = "import gc, sys, config.wsgi; print(gc.get_freeze_count(), 'annotation.views' in sys.modules)"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    frozen, views_loaded = result.stdout.split()
    assert int(frozen) > 50_000  # Django, the apps, numpy
    assert views_loaded == "True"  # the URLconf, and so every view, is loaded before the freeze
