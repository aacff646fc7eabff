"""Known-answer IPFS CIDs (FACTS.md), shared by the CID tests and the benchmarks.

The data is the concatenation of ``sha256(i.to_bytes(8, "big")).digest()`` for
i = 0, 1, 2, … cut to N bytes; ``ipfs add`` with default settings gives these CIDs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from jupyter_publish.sizes import MiB

FACTS_CIDS: dict[int, tuple[str, str]] = {
    1 * MiB: (
        "Qmf5BJUJ129GdC2TuaEXvBV3q5cJ4oD7gBnUD64EcTJW4y",
        "bafybeifsyv5ykyj2c3sb4lnaravxx6tzmpc6wuv3g3p5xqoh5rhlhshcc4",
    ),
    10 * MiB: (
        "QmZ4E7cPA6e8rGsWSrLKHFbB91PE4RtkbyRtKfVf8GxERo",
        "bafybeighxgv3vwvqkj6crbqlfhkcwho4tk3bvr2t6cjr76lbr4wdbvdf6m",
    ),
    100 * MiB: (
        "QmTM2c7QQfKcqbg1naNmAFu3ypeEufmX5Km41GYozBxbgt",
        "bafybeiftumoizjerxvqyaismtjcoqirfrf3f26vz7knltx7m256xel76xe",
    ),
}
"""size -> (CIDv0, CIDv1 with raw leaves) of the pattern below."""


def facts_pattern(n: int, block: int = MiB) -> Iterator[bytes]:
    """The FACTS.md test data, ``n`` bytes, in chunks of ``block`` bytes."""
    i = 0
    while n > 0:
        count = min(block, n)
        hashes = (count + 31) // 32
        data = b"".join(hashlib.sha256(j.to_bytes(8, "big")).digest() for j in range(i, i + hashes))
        i += hashes
        n -= count
        yield data[:count]
