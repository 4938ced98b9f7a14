"""The top-level package: version and repository, nothing heavy on import."""

import subprocess
import sys

import companion


def test_release_tag_follows_the_version():
    assert companion.RELEASE_TAG == f"v{companion.__version__}"
    assert companion.REPOSITORY_URL.startswith("https://github.com/")


def test_import_is_light():
    code = "import companion, sys; print('torch' in sys.modules, 'fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
