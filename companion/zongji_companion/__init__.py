"""The zongji companion: the desktop CLI that checks, simulates, bundles and syncs a site.

It imports the device's own core (`zongji`) so every rule it applies is the device's rule.
"""
