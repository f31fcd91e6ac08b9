"""Analog lines (FXS for a desk phone, FXO for the branch's line): hook, ring and audio as
events for the switch. Empty until the analog issue; boards name their line ports already.
"""
