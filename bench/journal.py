"""What the crash journal costs on the request path: the recorder's record() with and without it.

    .venv/bin/python -m bench.journal [--records N] [--rounds R] [--content]

record() runs once per request, in settle, on the event loop. With the journal it also encodes the
generation row and its spend with msgpack and makes one write(2) to the page cache (no fsync). Each
round records N generation rows as chat_call builds them (a fresh row each, made before timing), and
reports CPU microseconds per record() (process time, median of the rounds) and per flush for what
the journal adds there (seal a segment, then unlink and close it once the batch is committed).
`--content` adds a prompt and completion of ~1 KB, as with `log_prompts`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from omnirouter.accounting.ledger import INSTANCE, Ledger, Spend
from omnirouter.accounting.periods import current_window_starts
from omnirouter.governance.keys import KeyStore
from omnirouter.store.db import Database
from omnirouter.store.journal import Journal
from omnirouter.store.writer import Recorder

KEY_HASH = "3f" * 32
FLUSH_EVERY = 250  # rows per flush at ~1,000 requests/s and the default flush_interval of 0.25 s


def _row(i: int) -> dict[str, Any]:
    """A generation row with every column chat_call.Call._row fills, as a served request has it."""
    gen_id = f"gen-{1796190000 + i}-{i:020d}"
    return {
        "id": gen_id,
        "request_id": gen_id,
        "key_hash": KEY_HASH,
        "session_id": None,
        "upstream_id": f"chatcmpl-{i:024d}",
        "model": "bench/model",
        "provider_name": "Bench",
        "provider_slug": "bench",
        "api_type": "completions",
        "streamed": bool(i % 2),
        "cancelled": False,
        "finish_reason": "stop",
        "native_finish_reason": "stop",
        "created_at": datetime.now(UTC),
        "latency_ms": 3,
        "generation_time_ms": 1,
        "tokens_prompt": 12,
        "tokens_completion": 9,
        "native_tokens_prompt": 12,
        "native_tokens_completion": 9,
        "native_tokens_reasoning": 0,
        "native_tokens_cached": 0,
        "native_tokens_cache_write": 0,
        "total_cost": Decimal("0.000030"),
        "upstream_inference_cost": None,
        "cache_discount": Decimal(0),
        "is_byok": False,
        "http_referer": None,
        "app_title": None,
        "user_agent": "python-httpx/0.28.1",
        "external_user": None,
        "provider_responses": [
            {
                "endpoint_id": "bench/model@bench",
                "model_permaslug": "bench/model",
                "provider_name": "Bench",
                "status": 200,
                "latency": 2,
                "is_byok": False,
            }
        ],
        "error": None,
        "throughput": 9000.0,
    }


def _content(i: int) -> dict[str, Any]:
    return {"id": _row(i)["id"], "prompt": '[{"role":"user","content":"' + "x" * 500 + '"}]', "completion": "y" * 500}


def measure(records: int, rounds: int, with_content: bool) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="omnirouter-journal-bench-"))
    db = Database(f"sqlite+aiosqlite:///{tmp / 'bench.db'}")
    recorder = Recorder(db, Ledger(), KeyStore(), flush_interval=0.25, sync_interval=1.0)
    spend = Spend(("key:" + KEY_HASH, INSTANCE), Decimal("0.000030"), Decimal(0), current_window_starts())
    journal = Journal(tmp / "journal")
    per_record: dict[str, list[float]] = {"without": [], "with": []}
    per_flush: list[float] = []
    size = 0
    for _ in range(rounds):
        for mode in ("without", "with"):
            rows = [_row(i) for i in range(records)]
            contents = [_content(i) if with_content else None for i in range(records)]
            recorder.journal = journal if mode == "with" else None
            start = time.process_time_ns()
            for row, content in zip(rows, contents, strict=True):
                recorder.record(row, content, spend)
            per_record[mode].append((time.process_time_ns() - start) / records / 1000)
            recorder.rows.clear()
            recorder.contents.clear()
            recorder.unflushed.clear()
            recorder.unflushed_content.clear()
            if mode == "with":
                size = journal.current.size
                flushes = max(1, records // FLUSH_EVERY)
                start = time.process_time_ns()
                covered = journal.seal(last_flush_failed=False)
                journal.committed(covered)
                # A real flush seals a segment of FLUSH_EVERY records; the cost does not depend on its size.
                for _ in range(flushes - 1):
                    journal.append(rows[0], None, spend)
                    journal.committed(journal.seal(last_flush_failed=False))
                per_flush.append((time.process_time_ns() - start) / flushes / 1000)
    journal.close(everything_committed=True)
    asyncio.run(db.close())
    without, with_ = statistics.median(per_record["without"]), statistics.median(per_record["with"])
    return {
        "records": records,
        "rounds": rounds,
        "content": with_content,
        "record_us_without_journal": round(without, 2),
        "record_us_with_journal": round(with_, 2),
        "journal_us_per_request": round(with_ - without, 2),
        "journal_bytes_per_request": round(size / records),
        "journal_us_per_flush": round(statistics.median(per_flush), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--content", action="store_true", help="with prompt and completion (log_prompts)")
    args = parser.parse_args()
    r = measure(args.records, args.rounds, args.content)
    print(f"record(), CPU us per request (median of {r['rounds']} rounds of {r['records']}):")
    print(f"  without journal   {r['record_us_without_journal']:8.2f}")
    print(f"  with journal      {r['record_us_with_journal']:8.2f}")
    added, size = r["journal_us_per_request"], r["journal_bytes_per_request"]
    print(f"  journal adds      {added:8.2f}  ({size} bytes per record)")
    print(f"  per flush         {r['journal_us_per_flush']:8.1f}  (seal a segment, then unlink and close it)")


if __name__ == "__main__":
    main()
