"""Conversations: what a person is in the middle of, one at a time, whatever its flow.

What every flow shares (`Said`, `Tools`, `begin`) is domain/dialogue.py; `flows` is the one table from a
flow to its steps and functions; `router` takes every message that is not a command or a button
to the open conversation, with one set of words for cancel, back and the household's list.
"""
