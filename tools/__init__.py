"""The ``bijli`` command: wires hal + firmware + dlms into programs."""
