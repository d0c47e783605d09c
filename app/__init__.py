"""The NCL Forensics desktop application (PySide6). All analysis lives in ``ncl_core``."""
