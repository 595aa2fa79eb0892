//! The image: what a suspended process is saved as. `format` defines it,
//! `writer` writes it durably, `reader` reads and verifies it.

pub mod format;
pub mod pages;
pub mod reader;
pub mod writer;

pub use pages::PageFile;
pub use reader::Image;
pub use writer::{ImageWriter, WriteError};
