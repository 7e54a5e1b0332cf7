//! The schema, the manual and the example configuration agree.
