import time

import pytest

from cotlib import plots
from cotlib.data import CotlibError
from cotlib.tables import ROW_NAMES
from conftest import PROJECT


def test_make_figures_draws_every_committed_figure_from_results(tmp_path):
    lines = []
    started = time.time()
    written = plots.make_figures(PROJECT / "results", tmp_path, log=lines.append)
    print(f"make_figures: {time.time() - started:.0f} s")  # `make figures`: minutes, no training
    drawn = plots.available(PROJECT / "results")
    assert sorted(written) == sorted(tmp_path / f"{name}{suffix}" for name in drawn
                                     for suffix in (".png", ".pdf"))
    for path in written:
        assert path.stat().st_size > 10_000, path.name
    assert all(path.read_bytes().startswith(b"%PDF") for path in written if path.suffix == ".pdf")
    # a figure whose table is not in results/ yet is skipped with a line naming the table
    skipped = [line for line in lines if line.startswith("skipped ")]
    assert len(skipped) == len(plots.FIGURES) - len(drawn)
    assert "skipped diverse_reasoning_default: no diverse_reasoning_default.csv in " in "\n".join(skipped)
    assert "(notebook 05 writes it)" in "\n".join(skipped)


def test_committed_figures_and_the_readme_gallery_are_exactly_the_drawn_ones():
    committed = {p.stem for p in (PROJECT / "figures").iterdir()}
    drawn = plots.available(PROJECT / "results")
    assert committed == set(drawn)
    # notebooks 05 and 07 save their figures through the registry's names
    assert {"sample_lengths_default", "error_categories_default"} <= set(drawn)
    assert {"diverse_reasoning_full", "teacher_study_default"} <= set(plots.FIGURES)
    for name in drawn:
        for suffix in (".png", ".pdf"):
            assert (PROJECT / "figures" / f"{name}{suffix}").is_file(), name + suffix
    gallery = (PROJECT / "README.md").read_text().split("## Figures")[1].split("\n## ")[0]
    for name in drawn:
        assert f"figures/{name}.png" in gallery, name


def test_a_figure_asked_for_without_its_table_is_one_line(tmp_path):
    with pytest.raises(CotlibError, match=r"^figure teacher_study_full: no teacher_study_full.csv "
                                          r"in .* \(notebook 05 writes it\)$"):
        plots.make_figures(tmp_path, tmp_path / "figures", ["teacher_study_full"])
    assert not (tmp_path / "figures").exists()


def test_sample_lengths_figure_is_drawn_from_the_committed_box_numbers(tmp_path):
    boxes = (PROJECT / "results/sample_lengths_default.csv").read_text().splitlines()
    assert boxes[0] == "task,cell,who,correct,rationales,whislo,q1,median,q3,whishi,fliers"
    # one box of outliers fewer: still drawn (an empty fliers field is no outlier)
    (tmp_path / "sample_lengths_default.csv").write_text("\n".join(boxes[:3]) + "\n")
    figure = plots.FIGURES["sample_lengths_default"].draw(tmp_path)
    ax = figure.axes[0]
    assert ax.get_title() == "Coin Flip" and len(ax.get_yticklabels()) == 1
    fliers = [line for line in ax.lines if line.get_marker() not in ("", "None", None)]
    assert sorted(len(line.get_xdata()) for line in fliers) == [0, 12]  # the second row's 12


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
    text = (PROJECT / "results/answer_format_default.csv").read_text()
    (results / "answer_format_default.csv").write_text(text.replace(",ci_high", ",upper"))
    with pytest.raises(CotlibError, match=r"answer_format_default.csv: missing column\(s\) ci_high"):
        plots.make_figures(results, tmp_path / "figures", ["answer_format_default"])
    assert not (tmp_path / "figures").exists()


def test_ablation_marks_the_share_of_rationales_and_answer_texts_that_reach_gold():
    figure = plots.FIGURES["date_ablation_full"].draw(PROJECT / "results")
    marks = {line.get_label(): line.get_xdata() for line in figure.axes[0].lines
             if line.get_label().startswith("student: ")}
    rationale = marks["student: " + plots.READINGS["intermediate_right"][1]]
    text = marks["student: " + plots.READINGS["answer_text_right"][1]]
    # results/date_ablation_full.csv: the recorded D=1 cell's rationales reach the gold date in
    # 27 of 111; only the copyable cell (third) writes an answer text, gold in 67 of 111
    assert rationale[0] == pytest.approx(100 * 27 / 111)
    assert text[2] == pytest.approx(100 * 67 / 111)
    assert [x != x for x in text] == [True, True, False, True, True]  # NaN: no answer text
    assert len(figure.legends) == 1
