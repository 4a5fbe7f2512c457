//! The poems: fetching the chinese-poetry collection, reading the three
//! source formats, cleaning, script conversion and tagging by form.

pub mod convert;
