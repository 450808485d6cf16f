"""The `omnirouter` command's management groups beyond keys (each a click group; cli.py adds them)."""
