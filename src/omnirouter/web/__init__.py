"""Reaching the web on a request's behalf: page fetching (fetch.py) under the SSRF rules (ssrf.py), and
searching through the operator's engine (search.py, engines/)."""
