//! The vpcd transport: the vsmartcard virtual reader protocol over TCP (frames, control codes, reconnects).
