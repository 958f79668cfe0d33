"""Firmware upgrade, the meter's side: receive an image in blocks, verify it, activate it.

This is the logic behind the Image transfer object (IEC 62056-6-2 clause 4.4.6, class
18); the object itself, and the mapping of refusals to ACTION results, live in the
binding wing (:mod:`bijli.firmware.cosem.upgrade`). Nothing here imports DLMS. The
modules, bottom up:

* :mod:`.errors` -- the upgrade errors (:class:`~.errors.UpgradeError` and its kinds);
* :mod:`.image` -- signing keys and the signed image container: build, parse, verify;
* :mod:`.config` -- the ``[upgrade]`` config table and when an activated image takes over;
* :mod:`.record` -- the images record ``STATE/images/state.json`` as typed, frozen values,
  read and written atomically;
* :mod:`.store` -- :class:`~.store.ImageStore`, the on-disk image store and its state
  machine over the class-18 transfer status, as a table;
* :mod:`.boot` -- what the launcher (:mod:`bijli.tools.node.launcher`) records at each
  start: which image runs, a pending image promoted, or rolled back.

Files under ``STATE/images/``: ``state.json`` (the transfer record and the image slots:
active, previous, pending; written atomically), ``transfer.part`` (the image octets
received so far) and ``transfer.map`` (one octet per block, 1 = received; written after
the block's octets are on disk, so a block marked received is never a hole), and one
directory per installed image. Time is passed in (``now``): the firmware never reads
the clock.
"""
