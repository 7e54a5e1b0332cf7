//! One test per (state, input) cell of the lifecycle.
