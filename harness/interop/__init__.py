"""Interoperability with SIP software nobody here wrote: SIPp runs and scenarios."""
