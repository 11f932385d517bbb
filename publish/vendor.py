"""The browser libraries the site and the slides serve from their own folder, instead of a CDN.

Each is a pinned npm package: its tarball is downloaded once from the npm registry, checked
against the registry's SHA-512 integrity string, and unpacked into `build/vendor/<name>-<version>/`.
Later builds reuse that folder and need no network. Nothing else is fetched, ever.

    >>> root = vendored("mathjax3")          # build/vendor/mathjax-3.2.2
    >>> (root / "es5" / "tex-chtml.js").is_file()
    True
"""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR_DIR = ROOT / "build" / "vendor"


@dataclass(frozen=True)
class Package:
    """One pinned npm package: `name@version` with the registry's integrity string."""

    name: str
    version: str
    integrity: str  # "sha512-<base64>", as `npm view name@version dist.integrity` prints it

    @property
    def url(self) -> str:
        base = self.name.rsplit("/", 1)[-1]
        return f"https://registry.npmjs.org/{self.name}/-/{base}-{self.version}.tgz"

    @property
    def folder(self) -> Path:
        return VENDOR_DIR / f"{self.name}-{self.version}"


PACKAGES = {
    # the site's maths (Sphinx's mathjax_path points at its es5/tex-chtml.js)
    "mathjax3": Package(
        "mathjax",
        "3.2.2",
        "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
    ),
    # the slides: nbconvert's reveal template expects reveal.js 4, require.js, jQuery,
    # Font Awesome 4 and MathJax 2
    "reveal.js": Package(
        "reveal.js",
        "4.6.1",
        "sha512-1CW0auaXNPmwmvQ7TwpszwVxMi2Xr5cTS3J3EBC/HHgbPF32Dn7aiu/LKWDOGjMbaDwKQiGmfqcoGQ74HUHCMw==",
    ),
    "requirejs": Package(
        "requirejs",
        "2.3.7",
        "sha512-DouTG8T1WanGok6Qjg2SXuCMzszOo0eHeH9hDZ5Y4x8Je+9JB38HdTLT4/VA8OaUhBa0JPVHJ0pyBkM1z+pDsw==",
    ),
    "jquery": Package(
        "jquery",
        "3.7.1",
        "sha512-m4avr8yL8kmFN8psrbFFFmB/If14iN5o9nw/NgnnM+kybDJpRsAynV2BsfpTYrTRysYUdADVD7CkUUizgkpLfg==",
    ),
    "font-awesome": Package(
        "font-awesome",
        "4.7.0",
        "sha512-U6kGnykA/6bFmg1M/oT9EkFeIYv7JlX3bozwQJWiiLz6L0w3F5vBVPxHlwyX/vtNq1ckcpRKOB9f2Qal/VtFpg==",
    ),
    "mathjax2": Package(
        "mathjax",
        "2.7.9",
        "sha512-NOGEDTIM9+MrsqnjPEjVGNx4q0GQxqm61yQwSK+/5S59i26wId5IC5gNu9/bu8+CCVl5p9G2IHcAl/wJa+5+BQ==",
    ),
}


class VendorError(RuntimeError):
    """A pinned package could not be fetched or did not match its integrity string."""


def check_integrity(data: bytes, integrity: str) -> None:
    """Raise VendorError unless `data` has the SHA-512 digest that `integrity` names."""
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise VendorError(f"unsupported integrity algorithm {algorithm!r} (expected sha512)")
    got = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if got != expected:
        raise VendorError(f"integrity mismatch: expected sha512-{expected}, got sha512-{got}")


def unpack(data: bytes, folder: Path) -> None:
    """Unpack an npm tarball (files under `package/`) into `folder`, refusing paths that escape it."""
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            parts = Path(member.name).parts
            if not member.isfile() or not parts or parts[0] != "package" or ".." in parts:
                continue
            target = tmp.joinpath(*parts[1:])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.extractfile(member).read())
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def vendored(key: str, fetch=urllib.request.urlopen) -> Path:
    """The unpacked folder of PACKAGES[key], downloading and checking it first if it is not there.

    Raises VendorError with what to do when the registry cannot be reached or the file is wrong.
    """
    package = PACKAGES[key]
    if (package.folder / "package.json").is_file():
        return package.folder
    try:
        with fetch(package.url, timeout=60) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as error:
        raise VendorError(
            f"could not download {package.name}@{package.version} from the npm registry ({package.url}): "
            f"{error}. The site and the slides need it once; afterwards they build offline "
            f"from {package.folder}."
        ) from None
    check_integrity(data, package.integrity)
    unpack(data, package.folder)
    return package.folder


def copy_into(key: str, destination: Path, subpaths: tuple[str, ...] = ()) -> Path:
    """Copy the vendored package (or only `subpaths` of it) into `destination`; returns destination."""
    source = vendored(key)
    shutil.rmtree(destination, ignore_errors=True)
    if not subpaths:
        shutil.copytree(source, destination)
    for sub in subpaths:
        src = source / sub
        dst = destination / sub
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)
    return destination


if __name__ == "__main__":
    for key in PACKAGES:
        print(key, vendored(key))
