"""A declaration after submission: routing, the steps of the procedure, feedback to the household.

The moves and who may make them are data (domain.procedure); `moves` carries them out, `access`
decides who may act and opens a case or refuses, and each step lives with its own kind:
`submission`, `steps` (one-button steps, the verdict), `visit`, `objection`, `handover`.
"""

from domain.cases.access import may_see, owner_in_place, recipients_of
from domain.cases.actions import step_actions
from domain.cases.handover import hand_over, offer_handover
from domain.cases.moves import FINAL, receipt_number, township_staff
from domain.cases.objection import give_objection, object_now, start_objection
from domain.cases.steps import acknowledge, choose_verdict, give_reason, simple_step
from domain.cases.submission import submit_declaration
from domain.cases.visit import finish_visit, start_visit, visit_answer, visit_day_button

__all__ = [
    "FINAL",
    "acknowledge",
    "choose_verdict",
    "finish_visit",
    "give_objection",
    "give_reason",
    "hand_over",
    "may_see",
    "object_now",
    "offer_handover",
    "owner_in_place",
    "receipt_number",
    "recipients_of",
    "simple_step",
    "start_objection",
    "start_visit",
    "step_actions",
    "submit_declaration",
    "township_staff",
    "visit_answer",
    "visit_day_button",
]
