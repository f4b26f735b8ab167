"""One small generated town, run once per test session, for the report and browser tests.

Personal values are planted into it before the run: two 住民記録 records get a made-up name, kana,
address with a 個人番号 in it and a birth date; one of them is also made corrupt (an invalid
byte in its kana) so it goes to quarantine, where the report lists it by record number. The
tests search the report and Data Docs for these and for every generated name and address.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

SEED = 20261201
RESIDENTS = 400
PLANTED = {
    "name": "植込　秘密子",
    "kana": "ｳｴｺﾐ ﾋﾐﾂｺ",
    "address": "埋込県試験市秘密町９９番地　個人番号３１４１５９２６５３５８",
    "my_number": "314159265358",
    "my_number_ascii": "271828182845",
    "birth_raw": "3450607",  # 昭和45年6月7日
    "birth_iso": "1970-06-07",
}


@dataclass
class ReportRun:
    workdir: Path
    input_dir: Path
    result: object  # JobResult
    planted_records: list[int]  # 1-based record numbers in juki.dat
    progress_output: str  # what the run's progress display wrote on its terminal (a pty)

    @property
    def run_dir(self) -> Path:
        return self.result.run_dir

    @property
    def release(self) -> Path:
        return self.result.release_dir


def _field(text: str, length: int, pad: bytes = b" ") -> bytes:
    raw = text.encode("cp932")
    assert len(raw) <= length
    return raw + pad * (length - len(raw))


def _plant(juki: Path, records: list[int], corrupt: int) -> None:
    from ikou.pipeline.config.layout import load_layout

    layout = load_layout(juki.with_name("juki.layout.yaml"))
    fields = {f.name: f for f in layout.kinds["data"].fields}
    stride = layout.record_length + len(layout.separator or b"")
    data = bytearray(juki.read_bytes())
    for rec in records:
        start = (rec - 1) * stride

        def put(name, value: bytes, start=start):
            f = fields[name]
            assert len(value) == f.length
            data[start + f.offset:start + f.offset + f.length] = value

        put("name_kanji", _field(PLANTED["name"], fields["name_kanji"].length))
        kana = _field(PLANTED["kana"], fields["name_kana"].length)
        if rec == corrupt:  # an invalid CP932 pair at the end of the kana: quarantined
            kana = kana[:-2] + b"\x81\x20"
        put("name_kana", kana)
        put("address", _field(PLANTED["address"] + " " + PLANTED["my_number_ascii"],
                              fields["address"].length))
        put("birth", PLANTED["birth_raw"].encode("ascii"))
    juki.write_bytes(bytes(data))


@pytest.fixture(scope="session")
def report_run(tmp_path_factory) -> ReportRun:
    from ikou.pipeline.config.job import write_demo_job
    from ikou.pipeline.run.job import run_job
    from ikou.pipeline.run.progress import RunProgress
    from ikou.pipeline.synth.municipality import ALL_SOURCES, generate_municipality

    work = tmp_path_factory.mktemp("report-town")
    inp = work / "input"
    gen = generate_municipality(inp, RESIDENTS, SEED, corrupt_share=0.02, sources=ALL_SOURCES,
                                key_error_share=0.05, source_corrupt_share=0.02)
    job = write_demo_job(inp, gen.sources)
    planted = [5, 9]
    _plant(inp / "juki.dat", planted, corrupt=9)
    with _Terminal() as term:
        result = run_job(job, work / "out", "warn", truth=gen.truth,
                         progress=RunProgress(stream=term.stream, interval=0.05))
    return ReportRun(work, inp, result, planted, term.output)


class _Terminal:
    """A pseudo-terminal whose output is read by a thread while a run writes to it."""

    def __enter__(self):
        import os
        import pty
        import threading

        self._master, slave = pty.openpty()
        self.stream = os.fdopen(slave, "w", encoding="utf-8", buffering=1)
        self._chunks: list[bytes] = []

        def drain():
            while True:
                try:
                    data = os.read(self._master, 65536)
                except OSError:  # the terminal was closed
                    return
                if not data:
                    return
                self._chunks.append(data)

        self._thread = threading.Thread(target=drain, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        import os

        self.stream.close()
        self._thread.join(timeout=5)
        os.close(self._master)
        self.output = b"".join(self._chunks).decode("utf-8", "replace")
        return False


def personal_values(input_dir: Path) -> set[str]:
    """Every generated name, kana, address and birth date, and the planted values."""
    found: set[str] = set()
    for path in sorted(input_dir.glob("*expected.jsonl")):
        for line in path.open(encoding="utf-8"):
            values = json.loads(line).get("values") or {}
            for key in ("name_kanji", "name_kana", "address", "head_name_kanji",
                        "head_name_kana"):
                v = values.get(key)
                if isinstance(v, str) and len(v.strip()) >= 3:
                    found.add(v.strip())
            birth = values.get("birth")
            if isinstance(birth, dict) and birth.get("date"):
                found.add(birth["date"])
    found.update(v for k, v in PLANTED.items())
    found.update(PLANTED["name"].split("　"))  # surname or given name alone
    return found


@pytest.fixture(scope="session")
def artefacts_dir(tmp_path_factory) -> Path:
    """Where screenshots go: $IKOU_ARTEFACTS when set (kept for people), else a tmp folder."""
    import os

    target = os.environ.get("IKOU_ARTEFACTS")
    if target:
        path = Path(target)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("artefacts")





@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    from browser import Browser

    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()
