"""Reliability and security suite; a package so its conftest has its own name."""
