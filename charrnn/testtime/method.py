"""The interface every test-time method honours (see charrnn.testtime for the registry)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Method:
    key: str  # where a checkpoint records it: final[key]
    label: str  # what tables and plots call it
    prose: str  # what it does, in a sentence a visitor understands
    Settings: type  # its settings, a dataclass; fields defaulting to None are tuned
    char_losses: Callable  # (model, text, settings) -> the loss of each character after the first, (len(text) - 1,)
    tune: Callable  # (model, text, settings, log) -> (settings with the tuned fields set, {tuned values: nats/char})
    about: Callable  # (settings, tuned_on) -> how a reading was made, for the model card
    # (model, the text it trained on, settings, log) -> what tune and char_losses read in the model's place (what
    # the method measures on training text first); None: they read the model
    prepare: Callable | None = None
    # (model, text, settings) -> the whole next-character distribution at each character after the first, log p
    # (len(text) - 1, V), for a method whose reading is a network's (what a mixer of predictors reads); None: not offered
    char_log_probs: Callable | None = None

    def ready(self, model, train_text: str, settings, log=None):
        """What `char_losses` and `tune` read with: `model`, or what `prepare` measured on `train_text` (the text
        the model trained on) beside it."""
        return model if self.prepare is None else self.prepare(model, train_text, settings, log)

    def settings_of(self, reading: dict):
        """The settings a recorded reading (a checkpoint's final[key]) was made with. A setting added to the method
        after the reading was recorded takes the value its field's metadata gives as "recorded_before"."""
        return self.Settings(**{f.name: reading[f.name] if f.name in reading else f.metadata["recorded_before"]
                                for f in dataclasses.fields(self.Settings)})

    def tuned(self) -> tuple[str, ...]:
        """The names of the settings chosen on a tuning text unless given."""
        return tuple(f.name for f in dataclasses.fields(self.Settings) if f.default is None)

    def chosen(self, reading: dict) -> tuple:
        """The values a recorded reading chose for its tuned settings, in the order of its "tuning" grid's keys (a
        setting added to the method after the reading was recorded is not among them)."""
        return tuple(reading[name] for name in self.tuned() if name in reading)
