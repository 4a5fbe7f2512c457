//! Hand-written numeric kernels (not built yet).
