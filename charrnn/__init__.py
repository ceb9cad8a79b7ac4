"""charrnn: the character-level RNN language model of Mikolov et al. (2010) and its successors."""
from .checkpoint import CheckpointError, load, save
from .data import DataError, Vocab
from .evaluate import char_losses, evaluate, next_chars
from .model import CharRNN, ModelConfig
from .sample import generate

__all__ = ["CharRNN", "CheckpointError", "DataError", "ModelConfig", "Vocab", "char_losses", "evaluate", "generate", "next_chars",
           "load", "save"]
