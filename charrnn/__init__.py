"""charrnn: the character-level RNN language model of Mikolov et al. (2010) and its successors."""
from .checkpoint import CheckpointError, load, save
from .data import DataError, Vocab
from .model import CharRNN, ModelConfig

# Generation and scoring load on first use, so `python -m charrnn.sample` and `python -m charrnn.scoring`
# run their module once, as __main__, rather than after an import of the same module.
_LAZY = {"generate": "sample", "evaluate": "scoring", "char_losses": "scoring", "next_chars": "scoring",
         "evaluate_dynamic": "dynamic"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CharRNN", "CheckpointError", "DataError", "ModelConfig", "Vocab", "char_losses", "evaluate",
           "evaluate_dynamic", "generate", "load", "next_chars", "save"]
