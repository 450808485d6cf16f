"""What instances and workers share beyond the database: budgets held through leases, rate limits,
change notifications, circuit breakers, endpoint statistics and sticky sessions.

With `redis_url` set, Redis carries them; without it, the database does what must be exact (budgets,
rate limits, revocation) and each process keeps the rest for itself.
"""
