"""OpenAI (or any OpenAI-compatible server) embedder on the real ``openai`` client.

One module per concern:

- :mod:`.embedder`: :class:`OpenAIEmbedder`, fitting, packing, the workers, settling rows;
- :mod:`.transport`: one request with the real client, raw JSON and vector decoding;
- :mod:`.policy`: what a failure means (transient / about the input / fatal) and the waits
  (Retry-After, ``x-ratelimit-reset-*``, backoff with jitter);
- :mod:`.gate`: when each request may go (limits, shared backoff, probing while failing);
- :mod:`.breaker`: the circuit breaker that ends an outage;
- :mod:`.limiter`: the client-side requests/tokens per minute limiter.

**One retry layer: ours.** The client is built with ``max_retries=0``: this package has to
see every failure, to share one pause among all workers, to count retries and 429s, to split
a batch only when the failure is about its inputs, and to stop when the service is down.
"""

from jobsim.embedders.openai.embedder import OpenAIEmbedder

__all__ = ["OpenAIEmbedder"]
