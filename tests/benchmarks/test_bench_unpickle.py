"""The annotation unpickler: the community files' data loads, every other global is refused."""

from __future__ import annotations

import collections
import os
import pickle
import subprocess

import numpy as np
import pytest

from webvid.benchmarks import annotations, load_annotation_pickle
from webvid.errors import InputError


class Reduce:
    """Pickles as a call of ``func(*args)`` — what a malicious file does (dumping calls nothing)."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_the_community_files_data_round_trips(tmp_path, protocol):
    data = {
        "video7020": [["a", "man", "sings"], ["a", "song"]],
        "ids": {"video7021": np.int64(3), "video7022": np.int32(1), "n": 2},
        "arr": np.arange(6, dtype=np.int64).reshape(2, 3),
        "obj": np.array([["x", "y"], ["z"]], dtype=object),
        "od": collections.OrderedDict(b=1, a=2.5),
        "dd": collections.defaultdict(list, k=[1, 2]),
        "misc": ({1, 2}, frozenset({"q"}), b"raw", True, None, 1.5, -7),
    }
    p = tmp_path / "ok.pkl"
    p.write_bytes(pickle.dumps(data, protocol=protocol))
    got = load_annotation_pickle(p)
    assert got["video7020"] == data["video7020"] and got["ids"] == data["ids"]
    assert type(got["ids"]["video7021"]) is np.int64
    assert np.array_equal(got["arr"], data["arr"]) and got["obj"].tolist() == [["x", "y"], ["z"]]
    assert got["od"] == data["od"] and isinstance(got["od"], collections.OrderedDict)
    assert got["dd"]["new"] == [] and got["misc"] == data["misc"]


HAND_MADE = {
    # protocol 0, GLOBAL opcode: os.system("touch <marker>")
    "os.system": b"cos\nsystem\n(S'touch {m}'\ntR.",
    "posix.system": b"cposix\nsystem\n(S'touch {m}'\ntR.",
    "builtins.eval": b'cbuiltins\neval\n(S\'open("{m}", "w")\'\ntR.',
    "__builtin__.eval": b'c__builtin__\neval\n(S\'open("{m}", "w")\'\ntR.',  # py2 spelling
    "subprocess.Popen": b"csubprocess\nPopen\n((S'touch'\nS'{m}'\nltR.",
    "builtins.getattr": b"cbuiltins\ngetattr\n(cbuiltins\ndict\nS'clear'\ntR.",
}


@pytest.mark.parametrize("name", sorted(HAND_MADE))
def test_hand_made_malicious_pickles_are_refused_before_anything_runs(tmp_path, name):
    marker = tmp_path / "pwned"
    p = tmp_path / "raw-captions.pkl"
    p.write_bytes(HAND_MADE[name].replace(b"{m}", str(marker).encode()))
    with pytest.raises(InputError) as info:
        load_annotation_pickle(p)
    msg = str(info.value)
    assert str(p) in msg and "refusing to unpickle the global" in msg
    shown = name.replace("__builtin__", "builtins")
    assert f"'{shown}'" in msg
    assert not marker.exists()


@pytest.mark.parametrize(
    "func,args",
    [
        (os.system, ("touch {m}",)),
        (subprocess.check_call, (["touch", "{m}"],)),
        (eval, ("open('{m}', 'w')",)),
        (np.save, ("{m}", np.zeros(1))),  # numpy, but not one of the reconstruction globals
    ],
)
def test_reduce_payloads_at_any_depth_are_refused(tmp_path, func, args):
    marker = tmp_path / "pwned"
    fill = [a.replace("{m}", str(marker)) if isinstance(a, str) else a for a in args]
    fill = [[x.replace("{m}", str(marker)) for x in a] if isinstance(a, list) else a for a in fill]
    payload = {"video7020": [["fine"]], "video7021": [Reduce(func, *fill)]}
    p = tmp_path / "jsfusion_val_caption_idx.pkl"
    p.write_bytes(pickle.dumps(payload, protocol=4))
    with pytest.raises(InputError, match=r"jsfusion_val_caption_idx\.pkl: refusing to unpickle"):
        load_annotation_pickle(p)
    assert not marker.exists() and not (tmp_path / "pwned.npy").exists()


def test_size_limit_and_garbage(tmp_path, monkeypatch):
    p = tmp_path / "big.pkl"
    p.write_bytes(pickle.dumps(list(range(1000))))
    monkeypatch.setattr(annotations, "MAX_PICKLE_BYTES", 100)
    with pytest.raises(InputError, match=r"big\.pkl: annotation pickle is \d+ bytes, over"):
        load_annotation_pickle(p)
    monkeypatch.undo()
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(InputError, match=r"bad\.pkl: not a readable annotation pickle"):
        load_annotation_pickle(bad)
    with pytest.raises(InputError, match=r"nope\.pkl: cannot read"):
        load_annotation_pickle(tmp_path / "nope.pkl")


def test_a_reader_refuses_a_malicious_caption_file(bench_roots, tmp_path):
    """Through the reader: the benchmark never loads, and the error names the file."""
    import shutil

    from webvid.benchmarks import load_benchmark

    root = tmp_path / "msvd"
    shutil.copytree(bench_roots["msvd-ce"], root)
    marker = tmp_path / "pwned"
    pkl = root / "structured-symlinks" / "raw-captions.pkl"
    pkl.write_bytes(pickle.dumps({"x": Reduce(os.system, f"touch {marker}")}))
    with pytest.raises(InputError, match=r"raw-captions\.pkl: refusing .*'(posix|os)\.system'"):
        load_benchmark("msvd", root)
    assert not marker.exists()
