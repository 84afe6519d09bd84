"""Who may call what, and how often: API keys, scopes, rate limits.

Sits above the data plane (it reads the request context the transports make) and below the
transports, which authenticate a request with it before the data plane runs.
"""
