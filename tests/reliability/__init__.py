"""Reliability and security suite (issue 9); a package so its conftest has its own name."""
