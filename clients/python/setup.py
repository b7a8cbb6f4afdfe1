"""The version comes from the npm package's package.json (two levels up): one source for both."""

import json
import os

from setuptools import setup

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, '..', '..', 'package.json'), encoding='utf-8') as f:
    setup(version=json.load(f)['version'])
