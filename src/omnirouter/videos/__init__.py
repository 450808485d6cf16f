"""Video generation jobs: their rows (jobs.py), the poller that follows them upstream (poller.py), the
charge when one completes (billing.py) and the videos kept under the data dir (content.py)."""
