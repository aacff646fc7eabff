"""preview(): every kind, its mimebundle and its plain text; bounded reads; escaping."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import time
import types
import wave
import zipfile
from pathlib import Path

import pytest
from images import png_bytes

from jupyter_publish.errors import SourceError
from jupyter_publish.preview import Preview, kind_of, preview


def bundle(p: Preview) -> dict:
    return p._repr_mimebundle_()


# --------------------------------------------------------------------------- images


def test_png(tmp_path: Path) -> None:
    f = tmp_path / "plot.png"
    f.write_bytes(png_bytes(64, 48))
    p = preview(f)
    b = bundle(p)
    assert p.kind == "image" and set(b) == {"text/plain", "image/png"}
    assert base64.b64decode(b["image/png"]) == f.read_bytes()
    assert "plot.png" in str(p) and "PNG image, 64×48" in p.text


def test_jpeg_and_gif(tmp_path: Path) -> None:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 20, 30, 1) + b"\x01\x11\x00"
    jpg = tmp_path / "photo.JPG"
    jpg.write_bytes(
        b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9 + sof + b"\xff\xd9"
    )
    p = preview(jpg)
    assert "image/jpeg" in bundle(p) and "30×20" in p.text
    gif = tmp_path / "anim.gif"
    gif.write_bytes(b"GIF89a" + struct.pack("<HH", 7, 5) + b"\x00" * 20)
    p = preview(gif)
    assert "image/gif" in bundle(p) and "7×5" in p.text


def test_svg_is_embedded_as_img_so_scripts_never_run(tmp_path: Path) -> None:
    f = tmp_path / "fig.svg"
    f.write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script><rect width="5"/></svg>')
    b = bundle(preview(f))
    assert {"text/plain", "text/html", "image/svg+xml"} <= set(b)
    assert 'src="data:image/svg+xml;base64,' in b["text/html"]
    assert "<script" not in b["text/html"]


def test_huge_image_gets_a_note_not_an_embed(tmp_path: Path) -> None:
    f = tmp_path / "huge.png"
    f.write_bytes(png_bytes(300, 300))
    size = f.stat().st_size
    p = preview(f, max_embed_bytes=size - 1)
    b = bundle(p)
    assert "image/png" not in b
    assert f"too large to preview, {size:,} bytes" in p.text
    assert "too large to preview" in b["text/html"]


def test_file_named_png_that_is_not_one(tmp_path: Path) -> None:
    f = tmp_path / "fake.png"
    f.write_bytes(b"<html>not an image</html>")
    p = preview(f)
    assert "image/png" not in bundle(p)
    assert "not a PNG image" in p.text


# --------------------------------------------------------------------------- tables


def test_csv_head(tmp_path: Path) -> None:
    f = tmp_path / "data.csv"
    f.write_text("alpha,beta\n" + "".join(f"{i},{i * i}\n" for i in range(100)))
    p = preview(f, max_rows=5)
    b = bundle(p)
    assert p.kind == "csv" and set(b) == {"text/plain", "text/html"}
    assert "<th>alpha</th>" in b["text/html"] and "<th>beta</th>" in b["text/html"]
    assert "<td>16</td>" in b["text/html"] and "<td>25</td>" not in b["text/html"]
    assert "first 5 rows × 2 columns" in p.text
    assert "alpha" in p.text.splitlines()[2]


def test_short_csv_says_total(tmp_path: Path) -> None:
    f = tmp_path / "small.csv"
    f.write_text("a,b\n1,2\n")
    assert "1 row × 2 columns" in preview(f).text


def test_tsv_and_compressed_csv(tmp_path: Path) -> None:
    tsv = tmp_path / "t.tsv"
    tsv.write_text("x\ty\n1\t2\n")
    assert "<th>y</th>" in bundle(preview(tsv))["text/html"]
    gz = tmp_path / "t.csv.gz"
    gz.write_bytes(gzip.compress(b"gz_col,b\n1,2\n"))
    assert kind_of(gz) == "csv"
    assert "<th>gz_col</th>" in bundle(preview(gz))["text/html"]


def test_parquet_reads_metadata_and_one_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    np = pytest.importorskip("numpy")
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    n = 1_000_000
    f = tmp_path / "big.parquet"
    pq.write_table(pa.table({"id": np.arange(n), "value": np.random.default_rng(0).random(n)}), f)
    size = f.stat().st_size

    read = {"bytes": 0}

    class Counting(io.RawIOBase):
        def __init__(self, path: str) -> None:
            self.f = open(path, "rb")  # noqa: SIM115 - closed with the ParquetFile

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return True

        def seek(self, offset: int, whence: int = 0) -> int:
            return self.f.seek(offset, whence)

        def tell(self) -> int:
            return self.f.tell()

        def readinto(self, buf) -> int:
            k = self.f.readinto(buf)
            read["bytes"] += k
            return k

        def close(self) -> None:
            self.f.close()
            super().close()

    real = pq.ParquetFile
    monkeypatch.setattr(pq, "ParquetFile", lambda source, **kw: real(Counting(source), **kw))
    monkeypatch.setattr(pq, "read_table", lambda *a, **k: pytest.fail("read the whole table"))

    start = time.perf_counter()
    p = preview(f, max_rows=7)
    elapsed = time.perf_counter() - start
    assert "1,000,000 rows × 2 columns" in p.text
    assert "id: int64" in p.text and "value: double" in p.text
    assert "<th>value</th>" in bundle(p)["text/html"]
    assert len(p.text.splitlines()) < 30
    assert read["bytes"] < size / 4, f"read {read['bytes']} of {size} bytes"
    assert elapsed < 5


# --------------------------------------------------------------------------- JSON


def test_json_records_become_a_table(tmp_path: Path) -> None:
    f = tmp_path / "r.json"
    f.write_text(json.dumps([{"name": f"n{i}", "score": i} for i in range(40)]))
    p = preview(f, max_rows=3)
    assert "40 records, showing 3" in p.text
    assert "<th>score</th>" in bundle(p)["text/html"]


def test_json_columns_dict_becomes_a_table(tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"a": [1, 2, 3], "b": ["x", "y", "z"]}))
    assert "<th>b</th>" in bundle(preview(f))["text/html"]


def test_nested_json_is_pretty_text(tmp_path: Path) -> None:
    f = tmp_path / "n.json"
    f.write_text(json.dumps({"model": {"layers": [64, 32], "name": "<b>net</b>"}}))
    p = preview(f)
    assert '"layers": [' in p.text
    assert "&lt;b&gt;net&lt;/b&gt;" in bundle(p)["text/html"]


def test_big_json_shows_head_without_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "big.json"
    f.write_text(json.dumps([{"i": i, "pad": "x" * 50} for i in range(100_000)]))
    assert f.stat().st_size > 5 * 2**20
    monkeypatch.setattr(json, "loads", lambda *a, **k: pytest.fail("parsed a huge JSON file"))
    p = preview(f, max_bytes=2000)
    assert "showing the start of the text" in p.text
    assert len(p.text) < 3000


def test_invalid_json_falls_back_to_text(tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text("{not json")
    p = preview(f)
    assert "{not json" in p.text and "could not read as json" in p.text


def test_json_lines(tmp_path: Path) -> None:
    f = tmp_path / "events.jsonl"
    f.write_text("".join(json.dumps({"step": i, "loss": 1 / (i + 1)}) + "\n" for i in range(50)))
    p = preview(f, max_rows=4)
    assert "first 4 lines" in p.text
    html = bundle(p)["text/html"]
    assert "<th>loss</th>" in html and "<td>3</td>" in html and "<td>4</td>" not in html


# --------------------------------------------------------------------------- text, markdown, HTML


def test_text_head_is_bounded(tmp_path: Path) -> None:
    f = tmp_path / "run.log"
    f.write_text("".join(f"line {i}\n" for i in range(10_000)))
    p = preview(f)
    assert "line 0" in p.text and "line 49" in p.text and "line 50" not in p.text
    assert "showing the first 50 lines" in p.text
    assert "<pre" in bundle(p)["text/html"]
    small = preview(f, max_bytes=30)
    assert "line 5" not in small.text


def test_extensionless_result_files_are_text(tmp_path: Path) -> None:
    (tmp_path / "stdout").write_text("hello from the job\n")
    (tmp_path / "exitCode").write_text("0")
    assert preview(tmp_path / "stdout").kind == "text"
    assert "hello from the job" in str(preview(tmp_path / "stdout"))
    assert kind_of(tmp_path / "exitCode") == "text"


def test_markdown(tmp_path: Path) -> None:
    f = tmp_path / "README.md"
    f.write_text("# Results\n\n* accuracy **0.93**\n")
    b = bundle(preview(f))
    assert set(b) == {"text/plain", "text/html"}  # rendered here, sanitized (test_previews_made.py)
    assert "<h1>Results</h1>" in b["text/html"] and "<strong>0.93</strong>" in b["text/html"]
    assert "# Results" in b["text/plain"]


def test_markdown_with_raw_html_renders_without_it(tmp_path: Path) -> None:
    f = tmp_path / "evil.md"
    f.write_text("# Hi\n<img src=x onerror=alert(1)>\n")
    b = bundle(preview(f))
    assert "text/markdown" not in b and "<h1>Hi</h1>" in b["text/html"]
    assert "<img" not in b["text/html"] and "onerror" not in b["text/html"]


def test_html_is_sandboxed_and_escaped(tmp_path: Path) -> None:
    f = tmp_path / "report.html"
    f.write_text('<html><body><script>alert("x")</script><h1>Report</h1></body></html>')
    p = preview(f)
    html = bundle(p)["text/html"]
    assert '<iframe sandbox="" srcdoc="' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&quot;x&quot;" in html
    assert "<h1>Report</h1>" in p.text  # the text form shows the source


# --------------------------------------------------------------------------- archives


def test_tar_listing(tmp_path: Path) -> None:
    f = tmp_path / "results.tar.gz"
    with tarfile.open(f, "w:gz") as tf:
        for i in range(60):
            info = tarfile.TarInfo(f"outputs/file{i:02d}.txt")
            info.size = 10
            tf.addfile(info, io.BytesIO(b"0123456789"))
        evil = tarfile.TarInfo("../escape.txt")
        tf.addfile(evil, io.BytesIO(b""))
    p = preview(f)
    assert p.kind == "archive"
    assert "61 members, 61 files, 600 B uncompressed" in p.text
    assert "showing the first 50 members" in p.text
    html = bundle(p)["text/html"]
    assert "outputs/file00.txt" in html and "outputs/file49.txt" in html and "file50" not in html


def test_zip_listing_flags_unsafe_members(tmp_path: Path) -> None:
    f = tmp_path / "r.zip"
    with zipfile.ZipFile(f, "w") as zf:
        zf.writestr("ok/a.csv", "a,b\n")
        zf.writestr("../../etc/cron.d/x", "pwn")
    p = preview(f)
    assert "ok/a.csv" in p.text
    assert "unsafe: would land outside the destination" in p.text


# --------------------------------------------------------------------------- science formats, media, binary


def test_netcdf_and_hdf5_without_libraries_say_what_to_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "xarray", None)
    monkeypatch.setitem(sys.modules, "h5py", None)
    nc = tmp_path / "sst.nc"
    nc.write_bytes(b"CDF\x01" + b"\x00" * 100)
    h5 = tmp_path / "model.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    assert "pip install xarray netCDF4" in preview(nc).text
    assert "pip install h5py" in preview(h5).text
    assert preview(nc).kind == "netcdf" and preview(h5).kind == "hdf5"


def test_hdf5_summary_with_h5py(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("h5py")

    class Dataset:
        def __init__(self, shape, dtype):
            self.shape, self.dtype = shape, dtype

    class File:
        def __init__(self, path, mode):
            self.items = {"grp": object(), "grp/<temps>": Dataset((10, 20), "float32")}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def visititems(self, fn):
            for name, obj in self.items.items():
                fn(name, obj)

    fake.Dataset, fake.File = Dataset, File
    monkeypatch.setitem(sys.modules, "h5py", fake)
    f = tmp_path / "m.hdf5"
    f.write_bytes(b"\x89HDF\r\n\x1a\n")
    p = preview(f)
    assert "grp/<temps>  (10, 20)  float32" in p.text
    assert "grp/&lt;temps&gt;" in bundle(p)["text/html"]


def _wav(path: Path) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 800)


def test_audio_and_video(tmp_path: Path) -> None:
    pytest.importorskip("IPython")
    wav = tmp_path / "tone.wav"
    _wav(wav)
    p = preview(wav)
    assert p.kind == "audio" and "<audio" in bundle(p)["text/html"]
    assert type(p.display_object).__name__ == "Audio"
    mp4 = tmp_path / "clip.mp4"
    mp4.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    v = preview(mp4)
    assert v.kind == "video" and "<video" in bundle(v)["text/html"]
    big = preview(wav, max_embed_bytes=100)
    assert "too large to embed" in big.text and "<audio" not in bundle(big)["text/html"]


def test_media_without_ipython_degrades(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "IPython", None)
    monkeypatch.setitem(sys.modules, "IPython.display", None)
    wav = tmp_path / "tone.wav"
    _wav(wav)
    assert "install IPython" in preview(wav).text


def test_module_imports_and_previews_without_ipython(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("plain text path")
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('IPython', 'pandas', 'pyarrow'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from jupyter_publish.preview import preview\n"
        f"print(preview({str(tmp_path / 'a.txt')!r}))\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert "plain text path" in out.stdout


def test_unknown_binary_shows_size_and_hex(tmp_path: Path) -> None:
    f = tmp_path / "model.bin"
    f.write_bytes(bytes(range(256)) * 100)
    p = preview(f)
    assert p.kind == "binary"
    assert "25.0 KiB" in p.text
    assert "00000000  00 01 02 03" in p.text
    assert "00000040" not in p.text  # only the first 64 bytes


# --------------------------------------------------------------------------- folders and escaping


def _results_folder(root: Path) -> Path:
    out = root / "job-1234"
    (out / "outputs/plots").mkdir(parents=True)
    (out / "outputs/plots/loss.png").write_bytes(png_bytes(8, 8))
    (out / "outputs/metrics.csv").write_text("epoch,loss\n1,0.9\n2,0.5\n")
    (out / "stdout").write_text("training done\n")
    (out / "stderr").write_text("")
    (out / "exitCode").write_text("0")
    return out


def test_folder(tmp_path: Path) -> None:
    out = _results_folder(tmp_path)
    p = preview(out)
    b = bundle(p)
    assert p.kind == "folder" and set(b) == {"text/plain", "text/html"}
    html = b["text/html"]
    for rel in ("outputs/plots/loss.png", "outputs/metrics.csv", "stdout", "exitCode"):
        assert f"<td style='text-align:left'>{rel}</td>" in html
    assert 'src="data:image/png;base64,' in html  # thumbnail and inline preview
    assert "<th>epoch</th>" in html  # the CSV previewed inline
    assert "2 files + stdout, stderr, exit code" in p.text  # 5 files, 3 of them every job's
    lines = p.text.splitlines()
    assert lines[0].startswith("job-1234/")
    assert "├── exitCode  1 B  text" in lines
    assert "│   ├── metrics.csv  23 B  csv" in lines
    assert "│   └── plots/" in lines
    assert "│       └── loss.png" in "\n".join(lines)
    assert lines[-1] == "└── stdout  14 B  text"


def test_folder_limits_and_does_not_follow_symlinks(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    out = tmp_path / "res"
    out.mkdir()
    for i in range(30):
        (out / f"f{i:02d}.txt").write_text(f"file {i}")
    os.symlink(secret, out / "link.txt")
    p = preview(out, max_files=10, max_inline=2)
    assert "listing the first 10 entries" in p.text
    assert "TOP-SECRET" not in p.text and "TOP-SECRET" not in p.html
    assert p.html.count("<details open") == 2  # the rest fold under "show all"


def test_names_are_html_escaped(tmp_path: Path) -> None:
    f = tmp_path / "<script>.txt"
    f.write_text("<b>bold</b> & more")
    html = bundle(preview(f))["text/html"]
    assert "<script>" not in html and "&lt;script&gt;.txt" in html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in html
    folder_html = bundle(preview(tmp_path))["text/html"]
    assert "<script>" not in folder_html and "&lt;script&gt;.txt" in folder_html
    assert "<script>.txt" in str(preview(tmp_path))  # the text form keeps the real name


def test_mimebundle_include_exclude_and_ipython_formatter(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("a\n1\n")
    p = preview(f)
    assert set(p._repr_mimebundle_(include={"text/html"})) == {"text/plain", "text/html"}
    assert set(p._repr_mimebundle_(exclude={"text/html"})) == {"text/plain"}
    formatters = pytest.importorskip("IPython.core.formatters")
    data, _ = formatters.DisplayFormatter().format(p)
    assert "text/html" in data and data["text/plain"] == p.text


def test_corrupt_compressed_csv_falls_back_to_bytes(tmp_path: Path) -> None:
    f = tmp_path / "t.csv.gz"
    f.write_bytes(gzip.compress(b"a,b\n" * 1000)[:40])
    p = preview(f)
    assert p.kind == "binary" and "could not read as csv" in p.text


def test_fifo_is_not_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert kind_of(fifo) == "special"
    assert "not a regular file" in preview(fifo).text
    assert "pipe" in preview(tmp_path).text


def test_missing_path_raises_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        preview(tmp_path / "nope.csv")
