//! The image: what a suspended process is saved as. `format` defines it,
//! `writer` writes it durably, `reader` reads and verifies it, `sign`
//! signs it and says whose signature to trust, `stream` sends it as one
//! byte stream and receives it into a new directory.

mod bounds;
pub mod format;
pub mod leftovers;
pub mod pages;
pub mod reader;
pub mod sign;
pub mod stream;
pub mod writer;

pub use pages::PageFile;
pub use reader::Image;
pub use writer::{ImageWriter, WriteError};
