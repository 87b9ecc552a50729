"""The project's image, built from the real Dockerfile without Docker or a registry, cached by content.

The Dockerfile starts ``FROM ${PYTHON_IMAGE}`` (python:3.11-slim on Docker Hub). No registry is
reachable here, so the harness makes that base itself: ``debootstrap`` lays down Debian 12 with
the packages the Dockerfile needs (``BASE_PACKAGES``), buildah imports it as a local image, a
layer adds the host's CA bundle (see ``_base_image``), and the Dockerfile is built unchanged with
``--build-arg PYTHON_IMAGE=<that image>`` (vfs storage, chroot isolation: no daemon, no
overlay-in-overlay). The result is exported as an OCI archive, which ``ctr images import`` loads
into a node's containerd. The pod sandbox ("pause") image is a tiny Go program (hack/pause) in an
image of its own, built the same way.

Everything lives under ``<cache root>/image`` and is keyed by content: the root filesystem by its
suite and package list, the base by that and the host's CA bundle, the application image by the
Dockerfile, every file it copies and the base's key, the pause image by its source. A second run
finds the archives and builds nothing.

After each call the cache keeps only what the current keys name (:func:`prune`): the archives, and
in buildah's store the rootfs and base images the next application build starts from, and the
Dockerfile's ``deps`` stage with the layers under it, so that a change to the sources does not run
the dependencies' ``pip install`` again (the stage copies only ``constraints.txt``). vfs storage
copies the whole filesystem for every layer, so every build's layers and every older archive left
in place had grown the cache to 18 GB after a few dozen builds.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from harness import apt, binaries

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE_NAME = "docker.io/library/rabbitsync:0.1.0"
"""What the manifests' ``image: rabbitsync:0.1.0`` means to a kubelet."""
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3")
PAUSE_SOURCE = REPO_ROOT / "hack" / "pause" / "pause.go"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DEPS_IMAGE = "localhost/rabbitsync-deps:current"
"""The Dockerfile's ``deps`` stage as last built: the pinned dependencies, reused while the pins stay."""


@dataclass(frozen=True)
class Archive:
    """An image exported as an OCI archive, and the name it has once imported."""

    path: Path
    name: str


@dataclass(frozen=True)
class Images:
    app: Archive
    pause: Archive


def image_dir() -> Path:
    return binaries.cache_root() / "image"


def _run(argv: list[str], cwd: Path | None = None) -> str:
    """``argv``'s standard output; raises with the end of its output when it fails."""
    log.info("%s", " ".join(argv))
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
    return proc.stdout


def _buildah(*args: str) -> list[str]:
    store = image_dir() / "storage"
    return ["buildah", "--storage-driver", "vfs", "--root", str(store / "root"), "--runroot", str(store / "run"), *args]


def copied_sources(dockerfile: str) -> list[str]:
    """The context paths the Dockerfile's ``COPY``/``ADD`` instructions read (not ``--from`` stages)."""
    sources: list[str] = []
    for line in dockerfile.splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        sources.extend(args[:-1])
    return sources


def ignored_globs(dockerignore: str) -> list[str]:
    """The ``**/<glob>`` exclusions of a .dockerignore (generated files inside the copied folders)."""
    return [line.removeprefix("**/") for line in dockerignore.splitlines() if line.startswith("**/")]


def context_files(root: Path, sources: Iterable[str], ignore: list[str]) -> list[Path]:
    """Every file under ``sources`` (relative to ``root``) that the build would copy, sorted."""

    def kept(path: Path) -> bool:
        return not any(fnmatch.fnmatch(part, glob) for part in path.relative_to(root).parts for glob in ignore)

    files: list[Path] = []
    for source in sources:
        path = root / source
        candidates = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        files.extend(p for p in candidates if kept(p))
    return sorted(files)


def content_key(parts: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


def rootfs_key() -> str:
    return content_key([SUITE.encode(), MIRROR.encode(), " ".join(BASE_PACKAGES).encode()])


def base_key(rootfs: str) -> str:
    return content_key([rootfs.encode(), HOST_CA_BUNDLE.read_bytes()])


def app_key(root: Path, base: str) -> str:
    dockerfile = (root / "Dockerfile").read_text()
    ignore_file = root / ".dockerignore"
    ignore = ignored_globs(ignore_file.read_text()) if ignore_file.exists() else []
    files = context_files(root, copied_sources(dockerfile), ignore)
    parts = [base.encode(), dockerfile.encode()]
    for path in files:
        parts += [str(path.relative_to(root)).encode(), path.read_bytes()]
    return content_key(parts)


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One build at a time per cache: the demo and the e2e suite may ask at once."""
    image_dir().mkdir(parents=True, exist_ok=True)
    with (image_dir() / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _stored(name: str) -> bool:
    """Whether buildah's store holds the image ``name`` (a marker alone outlives a wiped store)."""
    return subprocess.run(_buildah("inspect", "--type", "image", name), capture_output=True).returncode == 0


def _export(local_name: str, archive: Path, name: str) -> None:
    partial = archive.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    _run(_buildah("push", local_name, f"oci-archive:{partial}:{name}"))
    partial.rename(archive)


def _rootfs_image(key: str) -> str:
    """Debian from debootstrap as a local image (``localhost/rabbitsync-rootfs:<key>``)."""
    name = f"localhost/rabbitsync-rootfs:{key}"
    marker = image_dir() / f"rootfs-{key}.built"
    if marker.exists() and _stored(name):
        return name
    with tempfile.TemporaryDirectory(dir=image_dir()) as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE, str(rootfs), MIRROR])
        # Package caches and lists are dead weight in every layer built on top.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            shutil.rmtree(rootfs / leftover, ignore_errors=True)
        _run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(Path(tmp) / "rootfs.tar"), "."])
        shutil.rmtree(rootfs)
        (Path(tmp) / "Containerfile").write_text('FROM scratch\nADD rootfs.tar /\nCMD ["python3"]\n')
        _run(_buildah("bud", "--isolation", "chroot", "-t", name, tmp))
    marker.touch()
    return name


def _base_image(rootfs: str, key: str) -> str:
    """The rootfs trusting the host's CA bundle, for pip too (``localhost/rabbitsync-base:<key>``).

    Where the host reaches PyPI through a TLS-inspecting proxy, only the host's bundle verifies it;
    pip otherwise trusts its own certifi copy. A Docker user's python image needs neither file.
    """
    name = f"localhost/rabbitsync-base:{key}"
    marker = image_dir() / f"base-{key}.built"
    if marker.exists() and _stored(name):
        return name
    with tempfile.TemporaryDirectory(dir=image_dir()) as tmp:
        shutil.copy(HOST_CA_BUNDLE, Path(tmp) / "ca-certificates.crt")
        (Path(tmp) / "pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
        (Path(tmp) / "Containerfile").write_text(
            f"FROM {rootfs}\nCOPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\nCOPY pip.conf /etc/pip.conf\n"
        )
        _run(_buildah("bud", "--isolation", "chroot", "--pull-never", "-t", name, tmp))
    marker.touch()
    return name


def _app(base: str, key: str) -> Archive:
    archive = Archive(image_dir() / f"rabbitsync-{key}.tar", IMAGE_NAME)
    if archive.path.exists():
        return archive

    def bud(*args: str) -> None:
        dockerfile = ["-f", str(REPO_ROOT / "Dockerfile"), str(REPO_ROOT)]
        build_arg = ["--build-arg", f"PYTHON_IMAGE={base}"]
        _run(_buildah("bud", "--isolation", "chroot", "--pull-never", "--layers", *build_arg, *args, *dockerfile))

    # The deps stage under a name of its own first: prune keeps it and the layers under it, so that the
    # next build after a change to the sources finds its `pip install` in buildah's layer cache.
    bud("--target", "deps", "-t", DEPS_IMAGE)
    local = f"localhost/rabbitsync:{key}"
    bud("-t", local)
    _export(local, archive.path, IMAGE_NAME)
    return archive


def _pause(key: str) -> Archive:
    name = f"rabbitsync.local/pause:{key}"
    archive = Archive(image_dir() / f"pause-{key}.tar", name)
    if archive.path.exists():
        return archive
    with tempfile.TemporaryDirectory(dir=image_dir()) as tmp:
        env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"}
        build = ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(Path(tmp) / "pause"), str(PAUSE_SOURCE)]
        subprocess.run(build, cwd=tmp, env=env, check=True, capture_output=True)
        (Path(tmp) / "Containerfile").write_text('FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n')
        local = f"localhost/rabbitsync-pause:{key}"
        _run(_buildah("bud", "--isolation", "chroot", "-t", local, tmp))
    _export(local, archive.path, name)
    return archive


def stale_images(listing: str, keep: set[str], layers: Mapping[str, tuple[str, ...]]) -> list[str]:
    """The ids in ``buildah images --all`` output (``<id> <name>:<tag>`` lines) to remove.

    An image stays if a kept name is on it (an image with several names is listed once per name), or
    if its layers (``layers``: id -> diff ids) are the first layers of a kept one: the intermediate
    images of a kept image's build, which buildah's layer cache looks up step by step.
    """
    named = [line.split(maxsplit=1) for line in listing.splitlines() if line.strip()]
    kept = {fields[0] for fields in named if len(fields) == 2 and fields[1] in keep}
    chains = [layers.get(image_id, ()) for image_id in kept]
    under = {image_id for image_id, own in layers.items() if any(chain[: len(own)] == own for chain in chains)}
    return sorted({fields[0] for fields in named} - kept - under)


def stale_files(directory: Path, keep: set[str]) -> list[Path]:
    """Archives and build markers in ``directory`` that no current key names."""
    return sorted(p for pattern in ("*.tar", "*.built") for p in directory.glob(pattern) if p.name not in keep)


def _ids(listing: str) -> set[str]:
    return {line.split()[0] for line in listing.splitlines() if line.strip()}


def _layers(image_id: str) -> tuple[str, ...]:
    """The image's layers' diff ids, bottom first."""
    return tuple(
        _run(
            _buildah("inspect", "--type", "image", "--format", "{{range .OCIv1.RootFS.DiffIDs}}{{.}} {{end}}", image_id)
        ).split()
    )


def prune(keep_images: set[str], keep_files: set[str]) -> None:
    """Remove every archive, marker and stored image an older build left; working containers too."""
    for path in stale_files(image_dir(), keep_files):
        log.info("pruning %s", path.name)
        path.unlink()
    _run(_buildah("rm", "--all"))
    listing = _run(_buildah("images", "--all", "--noheading", "--format", "{{.ID}} {{.Name}}:{{.Tag}}"))
    stale = stale_images(listing, keep_images, {image_id: _layers(image_id) for image_id in _ids(listing)})
    if stale:
        log.info("pruning %d stored images", len(stale))
        _run(_buildah("rmi", "--force", *stale))


def ensure_images() -> Images:
    """The application and pause images as OCI archives, built on first use (or after a change) only."""
    apt.ensure(("buildah", "debootstrap"))
    with _locked():
        started = time.monotonic()
        rootfs = rootfs_key()
        base = base_key(rootfs)
        rootfs_image = _rootfs_image(rootfs)
        base_image = _base_image(rootfs_image, base)
        app = _app(base_image, app_key(REPO_ROOT, base))
        pause = _pause(content_key([PAUSE_SOURCE.read_bytes()]))
        prune(
            {rootfs_image, base_image, DEPS_IMAGE},
            {app.path.name, pause.path.name, f"rootfs-{rootfs}.built", f"base-{base}.built"},
        )
        log.info("images ready in %.1fs: %s, %s", time.monotonic() - started, app.path.name, pause.path.name)
    return Images(app=app, pause=pause)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    print(ensure_images())
