"""The world outside the firmware: time, ports, pins, samples, display.

Each part has one interface and several backends (emulated and real), chosen by
name in the config, in the style of gpiozero's pin factories."""
