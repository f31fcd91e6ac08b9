"""What every shell (the ESP32's, host mode's) does the same way, in MicroPython: the pump that
feeds the switch and sends what it hands back, and the atomic store for state files.
"""
