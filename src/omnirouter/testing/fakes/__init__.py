"""Fake provider upstreams: ``core`` (server, script, faults, planning) plus one wire module per API.

Import them through ``omnirouter.testing``, which loads each lazily.
"""
