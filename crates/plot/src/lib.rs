//! # isoflop-plot
//!
//! The figures of the Chinchilla scaling analysis and the HTML report, from any fit. The
//! only crate that draws.
//!
//! - [`spec`]: the data behind each figure (what tests check).
//! - [`render`]: plotters renderers to SVG and PNG.
//! - [`report`]: one self-contained `report.html`.

pub mod render;
pub mod report;
pub mod spec;
pub mod viridis;
