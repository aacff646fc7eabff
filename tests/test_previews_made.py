"""Previews that show what was made: Markdown rendered (raw HTML left out), the most
useful files previewed first with the rest under "show all", and a card whose values sit
next to their labels and whose count names what every job adds. The HTML is rendered
and asserted on."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from jupyter_publish import api, cards
from jupyter_publish.preview import preview

README = """# Run 7

The loss went *down*, see **metrics.csv**.

| epoch | loss |
|-------|------|
| 1     | 0.9  |

<script>alert("x")</script>

A <b onclick="steal()">bold</b> claim and [a link](javascript:alert(1)).

<img src=x onerror=alert(2)>
"""


def _html(path: Path, **options: int) -> str:
    return str(preview(path, **options)._repr_mimebundle_()["text/html"])


def test_markdown_renders_as_markdown(tmp_path: Path) -> None:
    f = tmp_path / "README.md"
    f.write_text(README)
    html = _html(f)
    assert "<h1>Run 7</h1>" in html and "<em>down</em>" in html and "<strong>metrics.csv</strong>" in html
    assert "<th>epoch</th>" in html and "<td>0.9</td>" in html  # a Markdown table is a table
    assert "# Run 7" not in html  # not the whole document turned into text


def test_markdown_raw_html_is_dropped_not_shown_or_run(tmp_path: Path) -> None:
    f = tmp_path / "README.md"
    f.write_text(README)
    html = _html(f)
    for bad in ("<script", "alert(", "onclick", "steal()", "<img", "onerror", "javascript:"):
        assert bad not in html, bad
    assert "&lt;script" not in html and "&lt;b" not in html  # dropped, not escaped into text
    assert "A bold claim and" in html  # the text between the tags stays
    assert "raw HTML left out" in html
    assert 'alert("x")' in str(preview(f))  # the plain form is the file as it is


def _job_outputs(root: Path) -> Path:
    """What a %%publish cell leaves: four files it made, and stdout, stderr, exitCode."""
    out = root / "outputs"
    out.mkdir()
    (out / "metrics.csv").write_text("epoch,loss\n1,0.9\n2,0.5\n")
    (out / "run.log").write_text("epoch 1 done\nepoch 2 done\n")
    (out / "config.yaml").write_text("lr: 0.1\n")
    (out / "notes.txt").write_text("a note\n")
    (out / "stdout").write_text("training finished\n")
    (out / "stderr").write_text("a warning\n")
    (out / "exitCode").write_text("0")
    return out


def _open_previews(html: str) -> list[str]:
    return re.findall(r"<details open><summary>([^<]*)</summary>", html)


def test_more_than_three_files_preview_the_most_useful_first(tmp_path: Path) -> None:
    html = _html(_job_outputs(tmp_path))
    shown = _open_previews(html)
    assert len(shown) == 3 and "exitCode" not in shown
    assert shown[0] == "metrics.csv"  # the table the job made first
    assert set(shown[1:]) <= {"run.log", "stderr", "stdout"}  # then its logs


def test_show_all_holds_every_other_preview(tmp_path: Path) -> None:
    html = _html(_job_outputs(tmp_path))
    summary = r"<details class=\"jp-publish-show-all\"><summary>show (\d+) more \((\d+) in all\)"
    folded = re.search(summary, html)
    assert folded and folded.groups() == ("4", "7")  # what opening it reveals, and the whole
    rest = re.findall(r"<details><summary>([^<]*)</summary>", html[folded.end() :])
    assert len(rest) == 4 and rest[-1] == "exitCode"  # the exit code last
    assert set(_open_previews(html)) | set(rest) == {p.name for p in (tmp_path / "outputs").iterdir()}


def test_three_files_or_fewer_need_no_show_all(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("a\n1\n")
    (tmp_path / "b.txt").write_text("b\n")
    assert "jp-publish-show-all" not in _html(tmp_path)


class _Cells(HTMLParser):
    """The style of every th/td of the card's first table."""

    def __init__(self) -> None:
        super().__init__()
        self.tables, self.cells = 0, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables += 1
        elif tag in ("th", "td") and self.tables == 1:
            self.cells.append((tag, dict(attrs).get("style") or ""))


@pytest.fixture
def published(tmp_path: Path):
    return api.publish(_job_outputs(tmp_path), "local", quiet=True)


def test_the_cards_values_sit_next_to_their_labels(published) -> None:
    card = cards.result_card(published)
    cells = _Cells()
    cells.feed(card)
    assert {tag for tag, _ in cells.cells} == {"th", "td"}
    for _tag, style in cells.cells:  # a notebook's stylesheet right-aligns cells otherwise
        assert "text-align:left" in style.replace(" ", "")
    first_table = re.search(r"<table[^>]*>", card).group()
    assert "margin:0" in first_table  # not centred away from the card's left edge
    path_cell = re.search(r"<td style='([^']*)'><code>metrics.csv</code>", card)
    assert path_cell and "text-align:left" in path_cell.group(1)  # the files table too


def test_the_card_counts_what_the_cell_made_and_names_what_every_job_adds(published, tmp_path: Path) -> None:
    card = cards.result_card(published)
    assert "4 files + stdout, stderr, exit code" in card
    assert "7 files" not in card
    fetched = api.fetch(published.job_id, tmp_path / "back")
    assert "(4 files + stdout, stderr, exit code)" in fetched._repr_mimebundle_()["text/html"]


def test_the_folder_preview_counts_the_same_way(tmp_path: Path) -> None:
    p = preview(_job_outputs(tmp_path))
    assert "4 files + stdout, stderr, exit code" in p.text and "7 files" not in p.text
    assert "4 files + stdout, stderr, exit code" in str(p.html)


def test_a_plain_folder_is_counted_plainly() -> None:
    assert cards.file_count(["a.csv", "b.csv"]) == "2 files"
    assert cards.file_count(["stdout", "stderr", "exitCode"]) == "stdout, stderr, exit code"
    assert cards.file_count(["a.csv", "stdout", "stderr", "exitCode"]) == "1 file + stdout, stderr, exit code"
    assert cards.file_count(["sub/stdout", "sub/stderr", "sub/exitCode"]) == "3 files"


def test_previews_take_the_themes_text_colour(tmp_path: Path) -> None:
    """No fixed grey or orange text: #666 was 3.3:1 on JupyterLab Dark's background (the
    browser check measures every text's contrast under the dark theme)."""
    out = _job_outputs(tmp_path)
    (out / "README.md").write_text(README)  # a note: raw HTML left out
    html = _html(out, max_rows=1)  # another note: rows cut
    assert "raw HTML left out" in html
    assert re.findall(r"(?<![-\w])color:\s*#", html) == []


def test_a_folders_listing_puts_names_left_and_sizes_right(tmp_path: Path) -> None:
    """A notebook's stylesheet right-aligns table cells: each cell says where it sits."""
    html = _html(_job_outputs(tmp_path))
    listing = re.search(r"<table>.*?</table>", html, re.S).group()
    assert "<td style='text-align:left'>metrics.csv</td>" in listing
    assert "<td style='text-align:right'>18 B</td>" in listing
    assert "<th style='text-align:left'>path</th>" in listing and "<td>" not in listing
