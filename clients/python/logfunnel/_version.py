"""The version: the npm package's (package.json), the one source for both."""

from __future__ import annotations

import json
import os


def _version() -> str:
    # Run from the sources (the repository or the npm package): package.json three levels up.
    package_json = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'package.json')
    if os.path.exists(package_json):
        with open(package_json, encoding='utf-8') as f:
            return str(json.load(f)['version'])
    # Installed with pip: the version setup.py read from package.json at build time.
    from importlib.metadata import version
    return version('logfunnel')


__version__ = _version()
