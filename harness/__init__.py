"""harness: architecture search and benchmarking for facial expression recognition.

Heavy libraries (torch, timm, optuna, plotly) are imported lazily by the modules
that need them, so that importing this package and `harness --help` stay instant.
"""

from harness.errors import HarnessError

__version__ = "0.1.0"
__all__ = ["HarnessError", "__version__"]
