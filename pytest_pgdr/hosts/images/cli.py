"""``python -m pytest_pgdr.hosts.images build|list``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import IO

from pytest_pgdr.hosts.images.build import ensure_images
from pytest_pgdr.hosts.images.dockercli import (
    docker_available,
    image_exists,
    image_size,
    postgres_version,
)
from pytest_pgdr.hosts.images.specs import IMAGES, ImageBuildError


def _format_size(size: int | None) -> str:
    return "-" if size is None else f"{size / 1e6:.0f}MB"


def list_images(out: IO[str] | None = None) -> None:
    """Print each known image, whether it exists, its PostgreSQL version."""
    stream = out or sys.stdout
    ok, reason = docker_available()
    if not ok:
        raise ImageBuildError(f"cannot list the pytest-pgdr images: {reason}")
    for spec in IMAGES.values():
        if not image_exists(spec.tag):
            print(
                f"{spec.name}  {spec.tag}  missing  "
                f"(build: python -m pytest_pgdr.hosts.images build --only {spec.name})",
                file=stream,
            )
            continue
        try:
            version = postgres_version(spec.tag, spec.bindir)
        except ImageBuildError as exc:
            version = f"unusable: {exc}"
        size = _format_size(image_size(spec.tag))
        print(
            f"{spec.name}  {spec.tag}  present  {size}  {version}  bindir={spec.bindir}",
            file=stream,
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_pgdr.hosts.images",
        description="Build or list the local PostgreSQL images used by pytest-pgdr "
        "(no registry needed).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build missing images (or all with --force)")
    build.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    build.add_argument(
        "--only", choices=sorted(IMAGES), help="build just this image (and its base if missing)"
    )
    sub.add_parser("list", help="show each image, whether it exists and its PostgreSQL version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            for name, tag in ensure_images(args.only, force=args.force).items():
                print(f"{name}: {tag}")
        else:
            list_images()
    except ImageBuildError as exc:
        print(f"pytest-pgdr images: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pytest-pgdr images: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
