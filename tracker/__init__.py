"""The follow-up tracker: SMS check-ins 6 and 12 months after social prescribing discharge."""

__version__ = "0.1.0"
