import time

import pytest

from cotlib import plots
from cotlib.data import CotlibError
from cotlib.experiments import ROW_NAMES
from conftest import PROJECT


def test_make_figures_draws_every_committed_figure_from_results(tmp_path):
    started = time.time()
    written = plots.make_figures(PROJECT / "results", tmp_path, log=lambda line: None)
    assert time.time() - started < 300  # `make figures`: minutes, no training
    assert sorted(written) == sorted(tmp_path / f"{name}{suffix}" for name in plots.FIGURES
                                     for suffix in (".png", ".pdf"))
    for path in written:
        assert path.stat().st_size > 10_000, path.name
    assert all(path.read_bytes().startswith(b"%PDF") for path in written if path.suffix == ".pdf")


def test_committed_figures_and_the_readme_gallery_are_exactly_the_drawn_ones():
    committed = {p.stem for p in (PROJECT / "figures").iterdir()}
    assert committed == set(plots.FIGURES)
    for name in plots.FIGURES:
        for suffix in (".png", ".pdf"):
            assert (PROJECT / "figures" / f"{name}{suffix}").is_file(), name + suffix
    gallery = (PROJECT / "README.md").read_text().split("## Figures")[1].split("\n## ")[0]
    for name in plots.FIGURES:
        assert f"figures/{name}.png" in gallery, name


def test_one_colour_per_method_in_every_figure():
    colours = {row: plots.method_color(row) for row in ROW_NAMES.values()}
    assert len(set(colours.values())) == len(colours)
    assert plots.method_color("fine_tune_cot") == colours["Fine-tune-CoT"]
    assert plots.method_color("Fine-tune-CoT (esc:gpt-3.5-turbo, D=4), copyable answer") == \
        colours["Fine-tune-CoT"]
    assert plots.method_color("Teacher (175B, recorded)") == plots.METHOD_COLORS["Teacher"]


def test_unknown_figure_and_missing_column_are_one_line(tmp_path):
    with pytest.raises(CotlibError, match="unknown figure.s. main_huge; choose from main_default"):
        plots.make_figures(PROJECT / "results", tmp_path, ["main_huge"])
    results = tmp_path / "results"
    results.mkdir()
    text = (PROJECT / "results/answer_format.csv").read_text()
    (results / "answer_format.csv").write_text(text.replace(",ci_high", ",upper"))
    with pytest.raises(CotlibError, match=r"answer_format.csv: missing column\(s\) ci_high"):
        plots.make_figures(results, tmp_path / "figures", ["answer_format"])
    assert not (tmp_path / "figures").exists()
