"""Calls, above any signalling: the call decision (decision), ring plans (ringplan), the
attendant's walk through the menus (attendant, prompts) and call records (cdr). Imports site;
never sip or switch, so `zongji simulate` and the switch share every rule.
"""
