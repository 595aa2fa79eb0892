//! The image: what a suspended process is saved as. `format` defines it,
//! `writer` writes it durably, `reader` reads and verifies it, `sign`
//! signs it and says whose signature to trust.

mod bounds;
pub mod format;
pub mod leftovers;
pub mod pages;
pub mod reader;
pub mod sign;
pub mod writer;

pub use pages::PageFile;
pub use reader::Image;
pub use writer::{ImageWriter, WriteError};
