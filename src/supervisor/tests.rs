//! Supervisor: ordering, shutdown, look-up, update.
