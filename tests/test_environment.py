import re

from cotlib.environment import versions
from conftest import PROJECT


def lock() -> dict[str, str]:
    lines = (PROJECT / "constraints.txt").read_text().splitlines()
    pins = dict(re.fullmatch(r"([\w.-]+)==(\S+)", line).groups() for line in lines
                if line and not line.startswith("#"))
    return {name.lower().replace("_", "-"): version for name, version in pins.items()}


def test_the_lock_pins_what_runs_record_and_what_is_installed():
    pinned = lock()
    assert "cotlib" not in pinned and all("+" not in v for v in pinned.values())
    recorded = versions()
    assert recorded["python"].count(".") == 2
    for name, version in recorded.items():
        if name != "python":  # the installed version, local label (+cpu) aside, is the lock's
            assert pinned[name] == version.split("+")[0], (name, version, pinned.get(name))
