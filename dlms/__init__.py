"""The DLMS/COSEM protocol stack: bytes <-> frames <-> APDUs <-> COSEM objects.

Sans-IO throughout: nothing in this package opens a socket, starts a thread or
reads the wall clock. It knows nothing about meters (see ``firmware``).
"""
