"""The fleet engine: many bijli meters per process, each kept compact until it is observed.

``engine`` holds a shard of meters as dormant records (the RAM of a powered meter,
compressed) over one shard database (:mod:`firmware.shard`), hydrates the meters that
are being observed into full :class:`~tools.node.meter_node.MeterNode` s (the same firmware
step, object list and DLMS server as ``bijli meter``) in a bounded cache, and advances
each lazily through the shared clock's steps. The design and the measured figures are
in README's "Fleet engine" section.
"""
