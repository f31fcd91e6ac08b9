"""The zongji companion: the desktop CLI that checks, simulates and bundles a site, and runs it in host mode.

It imports the device's own core (`zongji`) so every rule it applies is the device's rule.
"""
