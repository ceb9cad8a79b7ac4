"""charrnn: the character-level RNN language model of Mikolov et al. (2010) and its successors."""
from .checkpoint import CheckpointError, save
from .compress import CompressError, compress_text, decompress_text
from .data import DataError, Vocab
from .deadline import DeadlineExceeded
from .fast import for_writing
from .hub import load
from .model import CharRNN, ModelConfig
from .sample import generate
from .scoring import char_losses, evaluate, next_chars
from .testtime.dynamic import evaluate_dynamic

__all__ = ["CharRNN", "CheckpointError", "CompressError", "DataError", "DeadlineExceeded", "ModelConfig", "Vocab",
           "char_losses", "compress_text", "decompress_text", "evaluate", "evaluate_dynamic", "for_writing",
           "generate", "load", "next_chars", "save"]
