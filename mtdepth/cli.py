"""The `mtdepth` click group: one command per stage, user errors as one line and exit code 2."""

from __future__ import annotations

import importlib

import click

from mtdepth import __version__
from mtdepth.errors import MtDepthError
from mtdepth.log import setup_logging
from mtdepth.pipeline.files import filesystem_error

# command name -> "module:attribute"; modules are imported only when the command runs,
# so `mtdepth --help` stays fast (no torch, no ultralytics).
COMMANDS = {
    "synth": ("mtdepth.stages.synth:synth", "Write the synthetic street dataset in the Virtual KITTI 2 layout."),
    "fit-segmenter": (
        "mtdepth.stages.fit_segmenter:fit_segmenter",
        "Fit a YOLO11n-seg on instance ground truth and freeze it.",
    ),
    "segment": (
        "mtdepth.stages.segment:segment",
        "Stage one: frozen YOLO11-seg masks, sparse depth, RGB, GT into a Zarr store.",
    ),
    "cache": ("mtdepth.stages.cache_cmd:cache", "Inspect and verify a stage-one store."),
    "dataset": ("mtdepth.stages.dataset_cmd:dataset", "Index a Virtual KITTI 2 layout tree and check its files."),
    "predict": (
        "mtdepth.stages.predict:predict",
        "Dense depth for your own RGB + sparse frames (KITTI layout), any size.",
    ),
    "export": ("mtdepth.stages.export:export", "Export the depth network to ONNX, checked against torch."),
    "evaluate": (
        "mtdepth.stages.evaluate:evaluate",
        "Score a checkpoint or a classical baseline: KITTI metrics per region, panels.",
    ),
    "train": ("mtdepth.stages.train:train", "Stage two: train MT-Depth or the U-Net baseline from the store alone."),
    "model-card": (
        "mtdepth.stages.model_card:model_card",
        "Write a trained depth model's JSON report: its making and its metrics per sparse pattern and region.",
    ),
    "report": (
        "mtdepth.stages.report:report",
        "Compare evaluated models: one table (markdown, JSON), curves, panels side by side.",
    ),
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List commands with their registered one-line help, importing none of them."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MtDepthError as exc:
            click.echo(f"mtdepth: error: {exc}", err=True)
            ctx.exit(2)
        except OSError as exc:  # a filesystem error no command turned into its own line: still one line
            click.echo(f"mtdepth: error: {filesystem_error(exc, ctx.invoked_subcommand or 'mtdepth')}", err=True)
            ctx.exit(2)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:  # click's own option errors, as one line like the project's
            where = exc.ctx.command_path if exc.ctx else ctx.command_path
            click.echo(f"mtdepth: error: {exc.format_message()} (see '{where} --help')", err=True)
            ctx.exit(2)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mtdepth")
def cli() -> None:
    """MT-Depth: instance-aware depth completion as a cached two-stage pipeline."""
    setup_logging()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="mtdepth")


if __name__ == "__main__":
    main()
