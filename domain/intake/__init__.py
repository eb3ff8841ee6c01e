"""The household's declaration (申报): the questions as data (`steps`), the typed draft shared by
the chat and the web form (`draft`), the chat conversation through them (`conversation`), and
submission to the village cadre (`submission`)."""

from domain.intake.conversation import (
    INTAKE_BUTTONS,
    answer,
    ask,
    back,
    press,
    prompt,
    resume,
    start,
    start_for_household,
)
from domain.intake.draft import CONSENT_VERSION, MAX_PHOTOS, RELATIONS, Draft, Voice, summary_params
from domain.intake.steps import EDITABLE, ORDER, STEP, STEPS
from domain.intake.submission import open_declaration_of, submit

__all__ = [
    "CONSENT_VERSION",
    "EDITABLE",
    "INTAKE_BUTTONS",
    "MAX_PHOTOS",
    "ORDER",
    "RELATIONS",
    "STEP",
    "STEPS",
    "Draft",
    "Voice",
    "answer",
    "ask",
    "back",
    "open_declaration_of",
    "press",
    "prompt",
    "resume",
    "start",
    "start_for_household",
    "submit",
    "summary_params",
]
