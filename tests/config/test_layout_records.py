"""Layout keys of the record formats F, FB, V, VB."""

import json

import pytest

from ikou.pipeline.config.layout import LayoutError, load_layout

BASE = {"name": "v", "record_length": 20,
        "fields": [{"name": "a", "offset": 0, "length": 10, "type": "text"},
                   {"name": "b", "offset": 10, "length": 10, "type": "digits"}]}


@pytest.fixture(autouse=True)
def _folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def lay(**keys):
    with open("v.layout.yaml", "w", encoding="utf-8") as f:
        json.dump({**BASE, **keys}, f)  # JSON is YAML
    return load_layout("v.layout.yaml")


def test_defaults_and_keys():
    assert lay().record_format == "F" and not lay().variable
    assert lay(record_format="FB").record_format == "FB" and not lay(record_format="FB").variable
    v = lay(record_format="V")
    assert v.variable and v.framing.max_length == 20 and v.framing.rdw_includes_header
    fmt = lay(record_format="VB", rdw={"byte_order": "little", "includes_header": False,
                                      "max_length": 30},
              bdw={"max_length": 4000}, extra_bytes="ignore").framing.kernel_format()
    assert (fmt.blocked, fmt.little_endian, fmt.includes_header, fmt.max_length,
            fmt.bdw_max_length) == (True, True, False, 30, 4000)


@pytest.mark.parametrize("keys, message", [
    ({"record_format": "U"}, "record_format must be one of F, FB, V, VB"),
    ({"record_format": "V", "record_separator": "\n"}, "record_separator must be none"),
    ({"rdw": {}}, "'rdw' applies to record_format V or VB, not F"),
    ({"record_format": "V", "bdw": {}}, "'bdw' applies to record_format VB"),
    ({"record_format": "V", "rdw": {"byte_order": "middle"}}, "rdw.byte_order must be big"),
    ({"record_format": "V", "rdw": {"includes_header": "yes"}}, "must be true or false"),
    ({"record_format": "V", "rdw": {"size": 3}}, "unknown key(s) size in 'rdw'"),
    ({"record_format": "V", "rdw": {"max_length": 10}}, "below record_length"),
    ({"record_format": "V", "rdw": {"max_length": 70000}}, "does not fit an RDW"),
    ({"record_format": "VB", "bdw": {"max_length": 20}}, "cannot hold a record of 20 bytes"),
    ({"record_format": "V", "extra_bytes": "keep"}, "extra_bytes must be error or ignore"),
    ({"record_format": "V", "extra_bytes": "ignore"}, "needs rdw.max_length above"),
])
def test_bad_keys_are_named(keys, message):
    with pytest.raises(LayoutError, match=None) as exc:
        lay(**keys)
    assert message in str(exc.value) and "v.layout.yaml" in str(exc.value)
