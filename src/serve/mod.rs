//! The web service (not built yet).
