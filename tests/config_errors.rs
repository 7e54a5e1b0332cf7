//! config_errors

#[allow(unused_imports)]
use crate::util::*;
