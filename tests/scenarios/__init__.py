"""One scenario suite for every pair of client format x upstream API.

- ``clients.py``: a driver per client format (chat and Responses through the openai SDK, Messages
  through the anthropic SDK), recording the bytes under the SDK to check them exactly: answers and
  stream events against the OpenAPI document, each format's event order, money as Decimal.
- ``upstreams.py``: the upstream APIs, two fakes each (a primary, and a backup for fallbacks), and
  where each wire carries what a scenario checks (system prompt, JSON schema, turns).
- ``conftest.py``: one gateway per test process for all of them, the ``pair`` fixture (a format, an
  upstream, a fresh key) and ``Pair.settle``: an answer's cost is the catalog prices times its tokens,
  and the same in ``/generation`` and ``/key``.
- ``test_*.py``: each scenario written once, run for every pair.

A new format is a ``Driver``; a new upstream API is an entry in ``all_upstreams()``.
"""
