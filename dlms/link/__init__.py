"""Data-link layers, one sans-IO state machine per file: HDLC (IEC 62056-46),
the TCP/UDP wrapper (IEC 62056-47) and the optical mode E opening (IEC 62056-21)."""
