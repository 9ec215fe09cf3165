"""tally_build_backend.py — a minimal PEP 517 build backend for the Tally
Python client, standard library only.

Why it exists: `pip install ./clients/python` must work on a machine with no
package index (the project's CI machines reach Debian's archive and npm, not
PyPI). setuptools' backend needs the `wheel` package to build a wheel, which
is not installed there and cannot be fetched. The client is one pure-Python
package with no dependencies, so a wheel is just a zip of its files plus the
three metadata files PEP 427 / the core metadata spec require.

Invariants:
  (1) The wheel holds exactly the files under tally_client/ (*.py and
      py.typed), and a RECORD listing every file with its sha256 and size.
  (2) Name, version and requires-python come from pyproject.toml, read with
      tomllib when available and otherwise by a literal scan of the [project]
      table (Python 3.9/3.10 have no tomllib); nothing else in pyproject is
      interpreted.
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "tally_client"


def _project():
    path = os.path.join(ROOT, "pyproject.toml")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        import tomllib  # Python >= 3.11

        proj = tomllib.loads(raw.decode("utf-8"))["project"]
        return proj["name"], proj["version"], proj.get("requires-python", ""), proj.get(
            "description", "")
    except ImportError:
        text = raw.decode("utf-8")
        table = text.split("[project]", 1)[1].split("\n[", 1)[0]

        def field(name):
            m = re.search(r'^%s\s*=\s*"([^"]*)"' % re.escape(name), table, re.M)
            return m.group(1) if m else ""

        return field("name"), field("version"), field("requires-python"), field("description")


def _dist_name(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def _metadata():
    name, version, requires, desc = _project()
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if desc:
        lines.append(f"Summary: {desc}")
    if requires:
        lines.append(f"Requires-Python: {requires}")
    return name, version, ("\n".join(lines) + "\n").encode("utf-8")


def _package_files():
    base = os.path.join(ROOT, PACKAGE)
    out = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fn in sorted(filenames):
            if fn.endswith(".py") or fn == "py.typed":
                full = os.path.join(dirpath, fn)
                out.append((os.path.relpath(full, ROOT).replace(os.sep, "/"), full))
    return out


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name, version, metadata = _metadata()
    dist = _dist_name(name)
    info = f"{dist}-{version}.dist-info"
    wheel_name = f"{dist}-{version}-py3-none-any.whl"
    records = []
    path = os.path.join(wheel_directory, wheel_name)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for arcname, full in _package_files():
            with open(full, "rb") as f:
                data = f.read()
            z.writestr(arcname, data)
            records.append(_record_line(arcname, data))
        wheel_meta = ("Wheel-Version: 1.0\nGenerator: tally_build_backend\n"
                      "Root-Is-Purelib: true\nTag: py3-none-any\n").encode()
        for fn, data in (("METADATA", metadata), ("WHEEL", wheel_meta)):
            arcname = f"{info}/{fn}"
            z.writestr(arcname, data)
            records.append(_record_line(arcname, data))
        records.append(f"{info}/RECORD,,")
        z.writestr(f"{info}/RECORD", "\n".join(records) + "\n")
    return wheel_name


def build_sdist(sdist_directory, config_settings=None):
    name, version, metadata = _metadata()
    base = f"{_dist_name(name)}-{version}"
    filename = f"{base}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as t:
        files = [("pyproject.toml", os.path.join(ROOT, "pyproject.toml")),
                 ("README.md", os.path.join(ROOT, "README.md")),
                 ("_build/tally_build_backend.py", os.path.abspath(__file__))]
        files += _package_files()
        for arcname, full in files:
            if os.path.exists(full):
                t.add(full, arcname=f"{base}/{arcname}")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(metadata)
        t.addfile(info, io.BytesIO(metadata))
    return filename
