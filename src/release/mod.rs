//! The release stage (issue 14, in progress): what instructors download — block maps for
//! `bmaptool copy` so far; parts under the asset limit, the Raspberry Pi Imager
//! repository and release notes follow.

pub mod bmap;
