"""The package: one version with the npm package, pip-installable offline, shipped in the npm tarball."""

import json
import os
import subprocess
import sys

import logfunnel

from conftest import PYTHON_DIR, ROOT


def package_json_version():
    with open(os.path.join(ROOT, 'package.json'), encoding='utf-8') as f:
        return json.load(f)['version']


def test_version_is_the_npm_packages():
    assert logfunnel.__version__ == package_json_version()


def test_pip_install_offline_into_a_venv(tmp_path):
    """`pip install --no-index` into a venv with the system's site packages (pyzmq from Debian)."""
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--system-site-packages', str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / 'bin' / 'pip'), 'install', '--no-index', '--no-build-isolation', PYTHON_DIR],
                         capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert pip.returncode == 0, pip.stdout + pip.stderr
    code = 'import importlib.resources, logfunnel, zmq; print(logfunnel.__version__, logfunnel.__file__, ' \
           'importlib.resources.files("logfunnel").joinpath("py.typed").is_file())'
    out = subprocess.run([str(venv / 'bin' / 'python'), '-c', code], capture_output=True, text=True, timeout=60,
                         cwd=str(tmp_path), env={k: v for k, v in os.environ.items() if k != 'PYTHONPATH'})
    assert out.returncode == 0, out.stderr
    version, path, typed = out.stdout.split()
    assert version == package_json_version()
    assert path.startswith(str(venv)) and typed == 'True'


def test_npm_tarball_ships_the_package():
    out = subprocess.run(['npm', 'pack', '--dry-run', '--json', '--ignore-scripts'], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    files = {f['path'] for f in json.loads(out.stdout)[0]['files']}
    for name in ('pyproject.toml', 'setup.py', 'README.md', 'logfunnel/__init__.py', 'logfunnel/py.typed', 'logfunnel/client.py'):
        assert 'clients/python/' + name in files
    assert not any('egg-info' in f or '/build/' in f or '__pycache__' in f for f in files)
