"""The expression classes of the synthetic corpus: the emotions each MEGC 2019 class shows, each emotion's
own facial action as FACS action units, and each dataset's names for them.

A clip draws an emotion and shows one of that emotion's AU patterns, so emotion-level tasks (CASME II and
SAMM 5 classes, SAMM objective classes) have a class-specific signal as well as the 3 MEGC classes. The
patterns follow the issue's list and the objective classes of Davison et al. 2018 (I AU6/AU12, II AU1+AU2/
AU5/AU25-26, III AU4/AU7(/AU23), IV AU9/AU10, V AU15/AU1+AU4, VI AU20 or AU1+AU2+AU4, VII contempt AU14);
AU23 is left out because the generator does not render it. Patterns are distinct across emotions (the
emotion is recoverable from the AUs, also for SMIC, whose folders only name the MEGC class).
"""

from __future__ import annotations

EXTRA_CLASS = "other"  # clips outside the MEGC classes: CASME II "others", SAMM "Other", SMIC non_micro

# Within-emotion variety: which AUs, on which side, in which mix. L/R = the subject's left/right.
EMOTION_PATTERNS = {
    "happiness": ("12", "L12", "R12", "6+12", "R6+R12", "L6+L12", "6A+12", "6+12A"),
    "surprise": ("1+2", "1+2+5", "1+2+26", "R1+R2", "L1+L2", "5+26", "1+L2", "1+2+5A"),
    "anger": ("4+7", "4", "7", "4+L7", "4+R7", "4A+7"),
    "contempt": ("L14", "R14"),  # unilateral, unlike repression's AU14
    "disgust": ("9", "4+9", "10", "9+10", "L10", "R10", "4+L10"),
    "repression": ("14", "17", "14+17", "15+17", "L15+L17"),
    "sadness": ("15", "L15", "R15", "1+4", "1+4+15"),
    "fear": ("20", "L20", "R20", "1+2+4", "1+2+4+20"),
    "others": ("18", "L18", "R18", "24", "18+24"),  # AUs no emotion above uses
}
# The emotions of a negative clip per part, in the order of the rotation that picks them (plan).
# SMIC names only the class; its negatives show the emotions its elicitation targeted.
NEGATIVE_EMOTIONS = {
    "casme2": ("disgust", "repression"),
    "samm": ("anger", "contempt", "disgust", "fear", "sadness"),
    "smic": ("disgust", "fear", "sadness"),
}
CLASS_EMOTIONS = {"positive": "happiness", "surprise": "surprise", EXTRA_CLASS: "others"}
# CASME II writes the emotions as above (lower case); SAMM capitalises them.
SAMM_EMOTIONS = {
    "anger": "Anger",
    "contempt": "Contempt",
    "disgust": "Disgust",
    "fear": "Fear",
    "happiness": "Happiness",
    "sadness": "Sadness",
    "surprise": "Surprise",
    "others": "Other",
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
