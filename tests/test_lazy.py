"""clips.lazy: a module named lazily loads on first use, once, whole, even with many threads."""

import sys
import threading

from clips.lazy import lazy_module


def test_threads_touching_a_lazy_module_at_once_all_see_it_whole(tmp_path, monkeypatch):
    # A module that takes a while to run its code, as numpy does: every thread asking for an
    # attribute meanwhile must wait for it, not see a half-loaded module (an AttributeError
    # under gunicorn's threads with importlib's LazyLoader on Python 3.11).
    (tmp_path / "slow_probe_module.py").write_text(
        "import time\nLOADS = [1]\ntime.sleep(0.3)\nVALUE = 42\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "slow_probe_module", raising=False)
    module = lazy_module("slow_probe_module")
    assert "slow_probe_module" not in sys.modules  # nothing ran yet
    start = threading.Barrier(8)
    seen, errors = [], []

    def use() -> None:
        start.wait()
        try:
            seen.append(module.VALUE)
        except Exception as exc:  # the failure this test exists for
            errors.append(repr(exc))

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert seen == [42] * 8
    assert sys.modules["slow_probe_module"].LOADS == [1]  # its code ran once
    assert module.LOADS is sys.modules["slow_probe_module"].LOADS
    sys.modules.pop("slow_probe_module", None)


def test_a_module_already_loaded_is_returned_as_it_is():
    assert lazy_module("json") is sys.modules["json"] or "json" not in sys.modules
