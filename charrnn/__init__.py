"""charrnn: the character-level RNN language model of Mikolov et al. (2010) and its successors."""
from .checkpoint import CheckpointError, save
from .data import DataError, Vocab
from .fast import for_writing
from .hub import load
from .model import CharRNN, ModelConfig
from .sample import generate
from .scoring import char_losses, evaluate, next_chars
from .testtime.dynamic import evaluate_dynamic

__all__ = ["CharRNN", "CheckpointError", "DataError", "ModelConfig", "Vocab", "char_losses", "evaluate",
           "evaluate_dynamic", "for_writing", "generate", "load", "next_chars", "save"]
