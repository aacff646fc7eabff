"""Real servers on loopback for tests, benchmarks and tutorials.

Each launcher starts a genuine server process (SeaweedFS for S3, a js-ipfs node for
IPFS, nginx for HTTP uploads) on free ports of 127.0.0.1, waits until it answers, and
stops it by PID. Nothing here is imported by the publisher itself.
"""

from .ipfs import IpfsNode
from .nginx import Nginx
from .seaweed import SeaweedS3

__all__ = ["IpfsNode", "Nginx", "SeaweedS3"]
