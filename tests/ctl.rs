//! ctl

#[allow(unused_imports)]
use crate::util::*;
