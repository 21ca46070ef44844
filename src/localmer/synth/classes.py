"""The expression classes of the synthetic corpus: which action units each shows, how each dataset names it."""

from __future__ import annotations

EXTRA_CLASS = "other"  # clips outside the MEGC classes: CASME II "others", SAMM "Other", SMIC non_micro

# Within-class variety: which AUs, on which side, in which mix. L/R = the subject's left/right.
CLASS_PATTERNS = {
    "positive": ("12", "L12", "R12", "6+12", "R6+R12", "L6+L12", "6A+12", "6+12A"),
    "surprise": ("1+2", "1+2+5", "1+2+26", "R1+R2", "L1+L2", "5+26", "1+L2", "1+2+5A"),
    "negative": ("4", "4+7", "9", "4+9", "L14", "R14", "15", "15+17", "10", "4+L10", "17", "R20", "1+4+15"),
    EXTRA_CLASS: ("7", "18", "24", "14", "L2", "R7", "25A+26A"),
}
# Emotion of a negative pattern as each sheet writes it (CASME II negative = disgust or repression).
NEGATIVE_EMOTIONS = {
    "4": ("disgust", "Anger"),
    "4+7": ("disgust", "Anger"),
    "9": ("disgust", "Disgust"),
    "4+9": ("disgust", "Disgust"),
    "L14": ("repression", "Contempt"),
    "R14": ("repression", "Contempt"),
    "15": ("repression", "Sadness"),
    "15+17": ("repression", "Sadness"),
    "10": ("disgust", "Disgust"),
    "4+L10": ("disgust", "Disgust"),
    "17": ("repression", "Sadness"),
    "R20": ("repression", "Fear"),
    "1+4+15": ("repression", "Sadness"),
}
CLASS_EMOTIONS = {
    "positive": ("happiness", "Happiness"),
    "surprise": ("surprise", "Surprise"),
    EXTRA_CLASS: ("others", "Other"),
}
SAMM_OBJECTIVE_CLASSES = {
    "Happiness": 1,
    "Surprise": 2,
    "Anger": 3,
    "Disgust": 4,
    "Sadness": 5,
    "Fear": 6,
    "Contempt": 7,
    "Other": 7,
}
SMIC_CLASS_CODES = {"negative": "ne", "positive": "po", "surprise": "sur", EXTRA_CLASS: "nm"}
