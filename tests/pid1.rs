//! pid1

#[allow(unused_imports)]
use crate::util::*;
