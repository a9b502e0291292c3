"""runs: the training runs of a folder at a glance."""

from __future__ import annotations

import json

import click

from pgtools.cli.common import option


def _cell(value, fmt: str = "{}") -> str:
    return "-" if value is None else fmt.format(value)


def _metrics(metrics: dict | None) -> str:
    if not metrics:
        return "-"
    values = ", ".join(f"{name} {_cell(value, '{:.4g}')}" for name, value in metrics.items() if name != "kimg")
    return f"{values} (kimg {_cell(metrics['kimg'], '{:g}')})"


def runs_table(summaries: list[dict]) -> str:
    """One line per run under a header (``summarize_run`` dicts)."""
    rows = [("run", "dataset", "res", "kimg", "checkpoint", "last metric")]
    for s in summaries:
        kimg = f"{_cell(s['kimg'], '{:g}')} / {_cell(s['total_kimg'], '{:g}')}"
        rows.append((s["run"], _cell(s["dataset"]), _cell(s["resolution"]), kimg, _cell(s["checkpoint"]),
                     _metrics(s["metrics"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]).rstrip()
                     for row in rows)


@click.command()
@click.argument("outdir", required=False, default="training-runs", type=click.Path(file_okay=False))
@option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def runs(outdir: str, as_json: bool) -> None:
    """List the run directories of OUTDIR [default: training-runs]: dataset, resolution, kimg reached
    of the total, newest checkpoint and last metric (read from config.json, stats.jsonl and file names).

    \b
    Examples:
      pgtools runs
      pgtools runs /data/runs --json
    """
    from pgtools.models.rundir import numbered_runs, summarize_run

    summaries = [summarize_run(path) for path in numbered_runs(outdir)]
    if as_json:
        click.echo(json.dumps(summaries, indent=2))
    elif summaries:
        click.echo(runs_table(summaries))
    else:
        click.echo(f"No run directories in {outdir}")


COMMANDS = [runs]
