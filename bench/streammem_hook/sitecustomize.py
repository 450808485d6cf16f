"""Loaded by Python at start (this directory on PYTHONPATH) in a gateway run by bench.streammem: with
BENCH_TRACEMALLOC set, tracemalloc starts before anything is imported, and each SIGUSR1 writes a
snapshot (and the count of gc-tracked objects by type) to BENCH_TRACEMALLOC_DIR/<n>.*"""

import os

if os.environ.get("BENCH_TRACEMALLOC"):
    import gc
    import json
    import signal
    import sys
    import tracemalloc

    tracemalloc.start(int(os.environ["BENCH_TRACEMALLOC"]))
    _out = os.environ["BENCH_TRACEMALLOC_DIR"]
    _taken = [0]

    def _snapshot(signum: int, frame: object) -> None:
        gc.collect()
        n = _taken[0] = _taken[0] + 1
        types: dict[str, list[int]] = {}
        for obj in gc.get_objects():
            t = type(obj)
            entry = types.setdefault(f"{t.__module__}.{t.__qualname__}", [0, 0])
            entry[0] += 1
            entry[1] += sys.getsizeof(obj)
        with open(os.path.join(_out, f"{n}.types.json"), "w") as f:
            json.dump(types, f)
        with open(os.path.join(_out, f"{n}.owners.json"), "w") as f:
            json.dump(_owners(), f)
        tracemalloc.take_snapshot().dump(os.path.join(_out, f"{n}.snapshot"))
        with open(os.path.join(_out, f"{n}.done"), "w") as f:
            f.write("ok")

    _WATCHED = ("list", "dict", "coroutine", "method", "Context", "cell", "function", "Future", "tuple", "Task")

    def _name(obj: object) -> str:
        t = type(obj)
        return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"

    def _owners() -> dict[str, int]:
        """For the watched types: how many objects of each are held by what (the first gc-tracked
        referrer's type; for a dict, also whose attribute dict it is or under which key it is held)."""
        objects = gc.get_objects()
        by_id = {id(o): o for o in objects}
        owner: dict[int, int] = {}  # id(referent) -> id(first referrer)
        for o in objects:
            for r in gc.get_referents(o):
                owner.setdefault(id(r), id(o))
        counts: dict[str, int] = {}
        for o in objects:
            if type(o).__name__ not in _WATCHED:
                continue
            own = by_id.get(owner.get(id(o), 0))
            where = _name(own) if own is not None else "-"
            if isinstance(own, dict):
                key = next((k for k, v in own.items() if v is o), None)
                up = by_id.get(owner.get(id(own), 0))
                where = f"dict[{key!r}] of {_name(up) if up is not None else '-'}"
            elif own is not None and hasattr(type(own), "__slots__"):
                slot = next((s for s in type(own).__slots__ if getattr(own, s, None) is o), None)
                where += f".{slot}" if slot else ""
            elif own is not None and getattr(own, "__dict__", None) is o:
                where = f"__dict__ of {_name(own)}"
            key = f"{_name(o)} <- {where}"[:160]
            counts[key] = counts.get(key, 0) + 1
        return counts

    signal.signal(signal.SIGUSR1, _snapshot)
