"""Inside the model: what the network remembers, how far back it looks, and which units mean something.

    horizon    the dependence of a prediction on the character k steps back (gradient norms): the memory
               horizon of a model, and what one prediction leans on
    features   features of play text a reader recognises (a speaker's name line, verse, ...), one function each
    probe      every hidden unit's activation at every character, and its ROC AUC for a feature
    measure    the inside record of a checkpoint (`python -m charrnn inside --record` writes it)
"""
from .features import FEATURES
from .horizon import leans_on, memory_horizon
from .measure import check_recordable, inside_record, write_record
from .probe import check_readable, not_readable, num_units, unit_activations, unit_name

__all__ = ["FEATURES", "check_readable", "check_recordable", "inside_record", "leans_on", "memory_horizon",
           "not_readable", "num_units", "unit_activations", "unit_name", "write_record"]
