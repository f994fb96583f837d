"""ReinforceTrade: multi-agent reinforcement-learning trading, from research to live."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("reinforcetrade")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
