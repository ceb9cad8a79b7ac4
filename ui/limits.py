"""The limits of a request, shared by the app's views and the static edition (charrnn.web reads them through
`python -m charrnn export-web`): plain numbers, so that reading them imports no Gradio."""
from __future__ import annotations

MAX_LENGTH = 2000  # characters per generation: ~1 s of CPU for the LSTM
MAX_TEMPERATURE = 2.0  # above 2 the text is noise
MAX_PROMPT_CHARS = 2000  # the prompt is read in one pass; longer adds cost and no style
MAX_RANDOM_SEED = 2**31 - 1  # -1 or empty = a new random seed for each request
# Every model writes each character in turn: a request costs what all of them cost together, hence a lower cap.
MAX_COMPARE_LENGTH = 600
MAX_SCORE_CHARS = 5000  # characters of a text to score (Your text)


def as_dict() -> dict:
    """The limits by name, as the static edition's models.json carries them."""
    return {"max_length": MAX_LENGTH, "max_temperature": MAX_TEMPERATURE, "max_prompt_chars": MAX_PROMPT_CHARS,
            "max_random_seed": MAX_RANDOM_SEED, "max_compare_length": MAX_COMPARE_LENGTH, "max_score_chars": MAX_SCORE_CHARS}
