"""The package's import contract: no Django anywhere, no torch for the light modules."""

import re
import subprocess
import sys
from pathlib import Path

import training.ml

PACKAGE = Path(training.ml.__file__).parent
REPOSITORY = PACKAGE.parent.parent


def test_no_module_imports_django():
    pattern = re.compile(r"^\s*(import django|from django)", re.MULTILINE)
    offenders = [path.name for path in PACKAGE.rglob("*.py") if pattern.search(path.read_text())]
    assert offenders == []


def test_config_data_and_split_import_without_torch():
    code = (
        "import sys; import training.ml.config, training.ml.data, training.ml.split; "
        "heavy = sorted({'torch', 'transformers', 'django'} & set(sys.modules)); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, check=True)
