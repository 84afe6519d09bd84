"""The data plane's check before a prediction: may this caller use this model, and is there
budget left (per key and per model)?"""

from __future__ import annotations

from collections.abc import Mapping

from modelport.config import Settings
from modelport.errors import RateLimitedError
from modelport.inference import InferenceContext
from modelport.security.keys import ApiKey, Scope
from modelport.security.policy import AccessPolicy
from modelport.security.ratelimit import Decision, Limit, RateLimiter, limiter_from_url


class RateLimits:
    """Token buckets: one per API key (its own budget, else the server's default) and one
    per model that has a budget, shared by all its callers."""

    def __init__(
        self, limiter: RateLimiter, per_key: Limit | None, per_model: Mapping[str, Limit]
    ) -> None:
        self._limiter = limiter
        self._per_key = per_key
        self._per_model = dict(per_model)
        self._key_limits: dict[str, Limit] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        url = settings.rate_limit_url
        limiter = limiter_from_url(
            None if url is None else url.get_secret_value(), settings.rate_limit_fail_closed
        )
        per_key = None if settings.key_rate_limit is None else Limit.parse(settings.key_rate_limit)
        per_model = {
            name: Limit.parse(options.rate_limit)
            for name, options in settings.model_options.items()
            if options.rate_limit is not None
        }
        return cls(limiter, per_key, per_model)

    def apply_to(self, model: str) -> bool:
        """Whether a call without a key to ``model`` spends from any bucket."""
        return model in self._per_model

    async def spend(self, ctx: InferenceContext, key: ApiKey | None, model: str) -> None:
        """One token from each bucket that applies; 429 from the first that is empty. The
        tightest bucket's state goes to the caller in ``RateLimit-*`` headers."""
        if key is None and model not in self._per_model:
            return  # nothing to count: the common case of a server without budgets
        tightest: Decision | None = None
        for bucket, limit, whose in self._buckets(key, model):
            decision = await self._limiter.acquire(bucket, limit)
            if not decision.allowed:
                raise RateLimitedError(
                    f"the rate limit of {whose} is reached ({decision.limit} requests in a "
                    "burst); retry after the time in Retry-After",
                    headers=dict(decision.headers()),
                )
            if tightest is None or decision.remaining < tightest.remaining:
                tightest = decision
        if tightest is not None:
            ctx.headers = (*ctx.headers, *tightest.headers())

    def _buckets(self, key: ApiKey | None, model: str) -> list[tuple[str, Limit, str]]:
        buckets = []
        if key is not None:
            limit = self._key_limit(key)
            if limit is not None:
                buckets.append((f"key:{key.id}", limit, f"API key {key.id}"))
        model_limit = self._per_model.get(model)
        if model_limit is not None:
            buckets.append((f"model:{model}", model_limit, f"model {model}"))
        return buckets

    def _key_limit(self, key: ApiKey) -> Limit | None:
        if key.rate_limit is None:
            return self._per_key
        limit = self._key_limits.get(key.rate_limit)
        if limit is None:
            limit = self._key_limits[key.rate_limit] = Limit.parse(key.rate_limit)
        return limit

    async def close(self) -> None:
        await self._limiter.close()


class Admission:
    """Implements the inference service's admission: scope, model list, public models, then
    the rate limits."""

    def __init__(self, policy: AccessPolicy, limits: RateLimits) -> None:
        self._policy = policy
        self.limits = limits

    def needed(self, model: str) -> bool:
        """Whether :meth:`admit` can refuse or count a call to ``model`` at all: with keys
        off (no caller then) and no budget for the model, it has nothing to do."""
        return self._policy.required or self.limits.apply_to(model)

    async def admit(self, ctx: InferenceContext, model: str | None) -> None:
        key = self._policy.authenticator.key(ctx.caller)
        self._policy.check(key, Scope.PREDICT, model, public_ok=True)
        if model is not None:
            await self.limits.spend(ctx, key, model)
