"""`mtdepth cache info STORE` and `mtdepth cache verify STORE`: look inside a stage-one store."""

from __future__ import annotations

import json

import click

from mtdepth.cache.density import sparse_density
from mtdepth.cache.fingerprint import flatten, show
from mtdepth.cache.store import open_store
from mtdepth.errors import MtDepthError
from mtdepth.log import progress_bar

BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
BYTES_PER_UNIT = 1024
SHORT_HASH = 12  # hex digits of a fingerprint shown in tables


def human_bytes(count: int) -> str:
    """1536 -> '1.5 KiB'."""
    exponent = 0
    while exponent < len(BYTE_UNITS) - 1 and count >= BYTES_PER_UNIT ** (exponent + 1):
        exponent += 1
    if exponent == 0:
        return f"{count} B"
    return f"{count / BYTES_PER_UNIT**exponent:.1f} {BYTE_UNITS[exponent]}"


def density_line(density: dict) -> str:
    """'density 4.1% of pixels, 7.9% of valid-depth pixels (pattern lidar)' and the share per drawn pattern."""
    line = (
        f"density {density['of_pixels']:.2%} of pixels, {density['of_valid']:.2%} of valid-depth pixels "
        f"(pattern {density['pattern']})"
    )
    if len(density["by_pattern"]) > 1:
        line += "; " + ", ".join(
            f"{name} {d['of_pixels']:.2%} on {d['frames']} frames" for name, d in density["by_pattern"].items()
        )
    return line


@click.group()
def cache() -> None:
    """Inspect and verify a stage-one store (a folder or an fsspec URL)."""


@cache.command()
@click.argument("store")
@click.option("--json", "as_json", is_flag=True, help="Print everything as one JSON document.")
def info(store: str, as_json: bool) -> None:
    """Arrays, sizes, codecs, fingerprints, provenance and split counts of STORE."""
    reader = open_store(store)
    details = reader.info()
    details["sparse_density"] = sparse_density(reader)
    if as_json:
        click.echo(json.dumps(details, indent=2))
        return
    splits = ", ".join(f"{name} {count}" for name, count in details["splits"].items())
    click.echo(
        f"store {details['url']}  (schema {details['schema_version']}, written by mtdepth {details['mtdepth_version']})"
    )
    click.echo(
        f"frames {details['frames']} ({splits}), {details['height']}x{details['width']}, "
        f"{details['shard_frames']} frames per shard, frames fingerprint {details['frames_fingerprint'][:SHORT_HASH]}"
    )
    click.echo(f"stored {human_bytes(details['stored_bytes'])} in all")
    for name, array in details["arrays"].items():
        ratio = f"{array['ratio']:.2f}x" if array["ratio"] else "-"
        state = f"fingerprint {array['fingerprint']}" if array["committed"] else "NOT COMMITTED (incomplete)"
        click.echo("")
        click.echo(f"{name}  {tuple(array['shape'])} {array['dtype']}  shards {tuple(array['shards'])}")
        click.echo(f"  stored {human_bytes(array['stored_bytes'])} of {human_bytes(array['raw_bytes'])} raw ({ratio})")
        click.echo(f"  codecs {array['codecs']}")
        for key, value in array["attrs"].items():
            click.echo(f"  attr {key} = {show(value)}")
        click.echo(f"  {state}")
        if array["provenance"]:
            click.echo("  provenance")
        for key, value in sorted(flatten(array["provenance"] or {}).items()):
            click.echo(f"    {key} = {show(value)}")
        if name == "sparse" and details["sparse_density"]:
            click.echo(f"  {density_line(details['sparse_density'])}")


@cache.command()
@click.argument("store")
def verify(store: str) -> None:
    """Check STORE: frame table, commits, fingerprints, and that every shard is present and decodes."""
    reader = open_store(store)
    total = reader.n_shards * len(reader.arrays())
    with progress_bar(total=total, desc="verify", unit="shard") as bar:
        problems = reader.verify(on_shard=bar.update)
    if problems:
        for problem in problems:
            click.echo(f"  {problem}")
        raise MtDepthError(
            f"store {store}: {len(problems)} problem(s) found; rerun `mtdepth segment --repair` "
            "with the params that made it to rewrite the damaged parts"
        )
    click.echo(f"store {store}: OK ({len(reader.frames)} frames; {', '.join(reader.arrays())})")
