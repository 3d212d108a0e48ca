"""The book's shape, checked without building it: figures, plots, navigation, landing page.

- Every code cell that draws a figure carries a caption, a name and alt text, and ends with
  ``plt.show()``.
- Every public function of ``book_utils.plots`` that returns a figure labels the axes it draws
  on, and uses the colour-blind-safe palette (diagrams: the role colours of ``DIAGRAM``).
- Every chapter is in the numbered table of contents; the repository button and Colab launch
  button are configured; the landing page says how to read, run in Colab, and run locally.
The built website itself is checked in a browser by tests/test_browser.py.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from book_utils import (attention_and_scans, bptt, cells, language_model, lstm_gates, memory_cells, plots,  # noqa: E402
                        matrix_memories, recurrent_neurons, sequence_shapes)

from conftest import CHAPTERS, ROOT
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())

# A cell draws a figure when it calls one of these (plots.plot_*, plots.draw_*, plt.subplots, ...).
DRAWS = re.compile(r"\bplt\.(show|subplots|subplot|figure|plot|imshow|scatter|bar|hist|matshow)\s*\("
                   r"|\b[a-z_]+\.(plot|draw)_\w+\s*\(|\bplots\.diagram_axes\s*\(")


def parse(source: str) -> ast.Module:
    lines = source.splitlines()
    return ast.parse("\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines))


@pytest.fixture(params=CHAPTERS, ids=[p.stem for p in CHAPTERS])
def chapter(request) -> Path:
    return request.param


# ---------------------------------------------------------------- figures in the chapters


def test_every_figure_cell_has_caption_name_and_alt_text(chapter: Path) -> None:
    cells = nbformat.read(chapter, as_version=4).cells
    problems, names = [], []
    # Calls that make a new figure: plt.subplots/figure, diagram_axes, and every plots function returning one.
    makers = "|".join(["diagram_axes", *figure_functions()])
    new_figure = re.compile(rf"\bplt\.(subplots|figure)\s*\(|\bplots\.({makers})\s*\(")
    for i, cell in enumerate(cells):
        lines = [line.split("#")[0] for line in cell.source.splitlines()] if cell.cell_type == "code" else []
        if not any(DRAWS.search(line) or new_figure.search(line) for line in lines):
            continue
        mystnb = cell.metadata.get("mystnb", {})
        figure, image = mystnb.get("figure", {}), mystnb.get("image", {})
        if not str(figure.get("caption", "")).strip():
            problems.append(f"cell {i}: no metadata mystnb.figure.caption")
        if not str(image.get("alt", "")).strip():
            problems.append(f"cell {i}: no metadata mystnb.image.alt (alt text for screen readers)")
        name = figure.get("name", "")
        if not str(name).startswith("fig-"):
            problems.append(f"cell {i}: mystnb.figure.name should start with 'fig-', got {name!r}")
        names.append(name)
        creators = [m.group(0) for line in lines for m in new_figure.finditer(line)]
        if len(creators) > 1:
            problems.append(f"cell {i}: one figure per cell (one caption each), it makes {len(creators)}: {creators}")
        body = parse(cell.source).body
        if not body or ast.unparse(body[-1]) != "plt.show()":
            problems.append(f"cell {i}: a figure cell ends with plt.show()")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"figure names used twice: {repeated}")
    assert not problems, f"{chapter.name}:\n  " + "\n  ".join(problems)


# ---------------------------------------------------------------- book_utils.plots

HISTORY = {
    "epoch": [1, 2, 3],
    "train_loss": [2.0, 1.2, 0.8], "val_loss": [2.1, 1.4, 1.0],
    "train_accuracy": [0.3, 0.6, 0.8], "val_accuracy": [0.25, 0.55, 0.7],
}
# One example call for every public function of book_utils.plots that returns a Figure.
SAMPLES = {
    "plot_history": lambda: plots.plot_history(HISTORY, title="sample"),
    "plot_digit_rows": lambda: recurrent_neurons.plot_digit_rows(torch.rand(28, 28), label=3),
    "plot_attention": lambda: attention_and_scans.plot_attention([torch.rand(4, 3)], ["123"], ["321"]),
    "draw_scan_tree": lambda: attention_and_scans.draw_scan_tree(4),
    "draw_attention_decoder": lambda: attention_and_scans.draw_attention_decoder(),
    "plot_timings": lambda: attention_and_scans.plot_timings(
        {"small": [{"T": 64, "loop": 1e-3, "scan": 5e-4, "nn.GRU": 2e-3},
                   {"T": 256, "loop": 4e-3, "scan": 1e-3, "nn.GRU": 8e-3}]}),
    "plot_compared_runs": lambda: recurrent_neurons.plot_compared_runs({"a": HISTORY, "b": HISTORY}),
    "plot_state_trajectories": lambda: memory_cells.plot_state_trajectories(
        torch.randn(20, 28, 2), torch.arange(20) % 2, [0, 1]),
    "plot_learning_curves": lambda: language_model.plot_learning_curves(
        {"step_loss": [2.0, 1.5, 1.2, 1.0], "val_steps": [2, 4], "val_loss": [1.4, 1.1]},
        {"a": [([2, 4], [2.1, 1.8])] * 2, "b": [([2, 4], [2.5, 2.2])] * 2}, baseline=1.5, smooth=2),
    "plot_unit_activity": lambda: language_model.plot_unit_activity(
        "ab\ncd", {"unit 1": torch.tensor([0.1, -0.2, 0.0, 0.5, 0.3, 0.9])}),
    "draw_unrolled_rnn": lambda: recurrent_neurons.draw_unrolled_rnn(3, output="y"),
    "draw_cell_with_output": lambda: memory_cells.draw_cell_with_output(3),
    "draw_sequence_shapes": lambda: sequence_shapes.draw_sequence_shapes(),
    "draw_lstm_cell": lambda: lstm_gates.draw_lstm_cell(),
    "draw_gru_cell": lambda: lstm_gates.draw_gru_cell(),
    "plot_gates_on_digit": lambda: lstm_gates.plot_gates_on_digit(
        torch.rand(28, 28), {name: torch.rand(28, 8) for name in "ifo"},
        {"i": "input, write", "f": "forget, keep", "o": "output, read"}),
    "draw_unrolled_classifier": lambda: bptt.draw_unrolled_classifier(3),
    "draw_autograd_graph": lambda: bptt.draw_autograd_graph(*_sample_autograd_graph()),
    "plot_state_gradients": lambda: bptt.plot_state_gradients(
        {"tanh": torch.logspace(-3, 0, 20), "relu": torch.logspace(-5, 0, 20)}),
    "plot_retrieval": lambda: matrix_memories.plot_retrieval(
        matrix_memories.retrieval_curves([2, 4, 8], [4, 8], trials=2)),
    "plot_recall": lambda: matrix_memories.plot_recall(
        [{"model": m, "pairs": n, "accuracy": a} for m, a in (("a", 0.9), ("b", 0.3)) for n in (4, 8)]),
    "plot_parity": lambda: matrix_memories.plot_parity(
        [{"model": m, "length": t, "accuracy": a} for m, a in (("a", 1.0), ("b", 0.5)) for t in (16, 64)], 16),
    "plot_form_timings": lambda: matrix_memories.plot_form_timings(
        [{"T": T, "form": f, "seconds": 1e-3 * T} for T in (16, 64) for f in matrix_memories.FORMS]),
    "plot_step_history": lambda: bptt.plot_step_history(
        {"no clipping": {"step_loss": [2.0, 1.5, float("nan")], "step_grad_norm": [1.0, 50.0, float("nan")]},
         "clipped": {"step_loss": [2.0, 1.2, 0.9], "step_grad_norm": [1.0, 3.0, 0.8]}}),
}
SAFE_COLOURS = {c.lower() for c in plots.PALETTE.values()} | {"#333333", "#000000", "#808080", "#ffffff"}
SAFE_CMAPS = {"viridis", "cividis", "magma", "inferno", "plasma", "gray", "gray_r", "Greys", "Greys_r",
              "binary", "RdBu", "RdBu_r", "PuOr", "PuOr_r", "BrBG", "BrBG_r"}


def _sample_autograd_graph():
    from book_utils import bptt, cells

    cell = cells.RNNCell(2, 3)
    _, h = cells.unroll(cell, torch.randn(1, 3, 2))
    return bptt.autograd_graph(h.sum())


def figure_functions() -> list[str]:
    """Every public function in book_utils (core and chapter modules) that returns a Figure."""
    import book_utils

    names = []
    for info in pkgutil.iter_modules(book_utils.__path__):
        module = importlib.import_module(f"book_utils.{info.name}")
        names += [name for name, fn in inspect.getmembers(module, inspect.isfunction)
                  if not name.startswith("_") and fn.__module__ == module.__name__
                  and inspect.signature(fn).return_annotation in ("Figure", Figure)]
    return sorted(names)


def test_every_figure_function_has_a_sample_call() -> None:
    missing = sorted(set(figure_functions()) - set(SAMPLES))
    assert not missing, f"add an example call for {missing} to SAMPLES in tests/test_site.py"


def greyish(colour: str) -> bool:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return max(r, g, b) - min(r, g, b) < 8


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_plot_functions_label_axes_and_use_the_palette(name: str) -> None:
    plots.use_book_style()
    fig = SAMPLES[name]()
    try:
        assert isinstance(fig, Figure), f"plots.{name} should return a matplotlib Figure, got {type(fig)}"
        problems = []
        for k, ax in enumerate(fig.axes):
            if ax.get_label() == "<colorbar>":
                continue
            draws = ax.lines or ax.images or ax.collections or ax.patches
            if ax.axison and draws:
                if not ax.get_xlabel().strip():
                    problems.append(f"axes {k} has no x label")
                if not ax.get_ylabel().strip():
                    problems.append(f"axes {k} has no y label")
            for line in ax.lines:
                colour = to_hex(line.get_color()).lower()
                if colour not in SAFE_COLOURS and not greyish(colour):
                    problems.append(f"axes {k}: line colour {colour} is not from plots.PALETTE")
            for image in ax.images:
                if image.get_cmap().name not in SAFE_CMAPS:
                    problems.append(f"axes {k}: colour map {image.get_cmap().name} is not colour-blind safe")
            for patch in ax.patches:
                face = to_hex(patch.get_facecolor()).lower()
                if patch.get_fill() and face not in SAFE_COLOURS and not greyish(face):
                    problems.append(f"axes {k}: patch colour {face} is not from plots.PALETTE / DIAGRAM")
        assert not problems, f"plots.{name}:\n  " + "\n  ".join(problems)
    finally:
        plt.close(fig)


def test_diagrams_draw_on_blank_canvas_in_role_colours() -> None:
    fig = recurrent_neurons.draw_unrolled_rnn(2, output="y")
    try:
        (ax,) = fig.axes
        assert not ax.axison, "diagrams have no axes"
        boxes = {to_hex(p.get_facecolor()).lower() for p in ax.patches if isinstance(p, FancyBboxPatch)}
        roles = {plots.DIAGRAM[r].lower() for r in ("input", "state", "output")}
        assert boxes == roles, f"expected boxes in the input/state/output role colours {roles}, got {boxes}"
        arrows = {to_hex(p.get_facecolor()).lower() for p in ax.patches if isinstance(p, FancyArrowPatch)}
        assert arrows == {plots.DIAGRAM["edge"].lower()}, f"arrows should use DIAGRAM['edge'], got {arrows}"
    finally:
        plt.close(fig)


# ---------------------------------------------------------------- navigation and landing page


def toc_files() -> list[str]:
    files = []

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections", []))

    for part in TOC.get("parts", [TOC]):
        walk(part.get("chapters", []))
    return files


def test_every_chapter_is_in_the_numbered_table_of_contents() -> None:
    parts = TOC.get("parts", [TOC])
    assert all(part.get("numbered") for part in parts), "every part of _toc.yml needs `numbered: true`"
    listed = toc_files()
    on_disk = [f"chapters/{p.stem}" for p in CHAPTERS]
    unlisted = sorted(set(on_disk) - set(listed))
    assert not unlisted, f"chapters missing from _toc.yml: {unlisted}"
    missing = [f for f in listed if not any((ROOT / f).with_suffix(s).exists() for s in (".ipynb", ".md"))]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"
    chapters = [f for f in listed if f.startswith("chapters/")]
    assert chapters == sorted(chapters), f"chapters are not in file order in _toc.yml: {chapters}"


def test_repository_and_colab_buttons_are_configured() -> None:
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", CONFIG["repository"]["url"]), CONFIG["repository"]
    assert CONFIG.get("html", {}).get("use_repository_button") is True, "html.use_repository_button must be true"
    assert CONFIG.get("launch_buttons", {}).get("colab_url") == "https://colab.research.google.com"


@pytest.mark.parametrize("lead, must_mention", [
    ("**Read it here.**", "website"),
    ("**Run it in Colab.**", "Colab"),
    ("**Run it on your machine.**", "bash scripts/run_tests.sh"),
])
def test_landing_page_says_how_to_read_and_run(lead: str, must_mention: str) -> None:
    paragraphs = re.split(r"\n\s*\n", (ROOT / "intro.md").read_text())
    found = [p for p in paragraphs if p.lstrip().startswith(lead)]
    assert found, f"intro.md has no paragraph starting {lead}"
    assert must_mention in found[0], f"intro.md's {lead} paragraph should mention {must_mention!r}"
    assert len(found[0].strip().splitlines()) <= 3, f"intro.md's {lead} paragraph is longer than three lines"


def test_landing_page_gives_the_readmes_two_commands() -> None:
    """intro.md's "Run it on your machine" gives the same two commands the README opens with."""
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert block, "README.md opens with no ```bash block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["bash scripts/build_book.sh", "bash scripts/run_tests.sh"], (
        f"README.md should open with exactly the two commands, found {commands}")
    paragraph = next(p for p in re.split(r"\n\s*\n", (ROOT / "intro.md").read_text())
                     if p.lstrip().startswith("**Run it on your machine.**"))
    assert re.findall(r"`(bash scripts/[^`]+)`", paragraph) == commands, paragraph


# ---------------------------------------------------------------- inline math that survives MyST

DISPLAY_MATH = re.compile(r"\$\$.*?\$\$", re.DOTALL)
FENCED = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)
BLOCK_START = re.compile(r"(?:[-+*>#]|\d+[.)])(?:\s|$)")


def test_no_inline_math_line_starts_like_a_block(chapter: Path) -> None:
    # A line inside $...$ that starts with "+ ", "- ", "1. " or "#" is read by MyST as a list
    # item or heading before the math is seen: the page then shows a raw "$" and broken markup.
    problems = []
    for index, cell in enumerate(nbformat.read(chapter, as_version=4).cells):
        if cell.cell_type != "markdown":
            continue
        text = re.sub(r"`[^`\n]*`", "", DISPLAY_MATH.sub("", FENCED.sub("", cell.source)))
        open_math = False
        for line in text.splitlines():
            if open_math and BLOCK_START.match(line.lstrip()):
                problems.append(f"cell {index}: {line.strip()[:60]!r}")
            open_math ^= line.replace(r"\$", "").count("$") % 2 == 1
    assert not problems, "inline math broken across a line that starts like a block:\n  " + \
        "\n  ".join(problems)
