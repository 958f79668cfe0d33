"""The meter-node wiring: hal + firmware + dlms joined into a running meter.

:mod:`.meter_node` is one meter with its DLMS server and console (shared by
``bijli meter`` and ``bijli fleet``), :mod:`.links` the shells that carry DLMS
between hal ports and the sans-IO link layers, :mod:`.config` the meter's TOML
file with its ``[hal]`` and ``[upgrade]`` tables, :mod:`.devices` the rig's
hardware, :mod:`.launcher` which build a start runs, :mod:`.push` the push
sender, :mod:`.fleet` and :mod:`.household` many meters and their loads.
"""
