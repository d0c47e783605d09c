"""NCL Forensics core library: image manipulation localization with NCL.

Qt-free by design: the desktop app in ``app/`` calls this library, never the other way round.
"""

__version__ = "0.1.0"
