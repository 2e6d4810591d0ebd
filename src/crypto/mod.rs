//! All cryptography lives here: the master key and what is derived from it (`keys`), and
//! sealing secrets at rest (`seal`).

pub mod keys;
pub mod seal;

pub use keys::{Keys, MasterKey};
pub use seal::Sealer;
